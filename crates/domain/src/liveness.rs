//! Liveness of the angled selfie (F4, #13): the member presses 「撮影する」 facing the camera
//! and turns as instructed while the page takes a short burst of frames. The frames must show
//! one continuous motion from a frontal pose to the instructed one, the same face throughout,
//! with no frame repeated: a set of prepared photos (a frontal one and a turned one) does not
//! make such a sequence. A single still (the file input without the in-page camera, or an API
//! client that sends one image) is accepted but never completes an application on its own:
//! it goes to a reviewer (`liveness_no_burst`).
//!
//! No I/O and no face model: the service measures each frame (head yaw, mouth, whether it is
//! the frontal selfie's face, whether it repeats the previous frame) and this module decides.

use serde::{Deserialize, Serialize};

use crate::ekyc::{Instruction, MouthState, Turn};

/// The fewest frames a burst has (a single frame is a still, see [`Liveness::SingleFrame`]).
pub const MIN_BURST_FRAMES: usize = 3;
/// The most frames one angled capture may carry.
pub const MAX_BURST_FRAMES: usize = 8;
/// Degrees the head may turn back between two frames (landmark noise, a small wobble) and
/// still be one motion.
pub const YAW_JITTER_DEG: f32 = 6.0;
/// The largest turn between two consecutive frames: a head that turns passes through the
/// angles in between, a pair of photos jumps (the page takes a frame every 400 ms; a member
/// who turns faster is asked to turn slowly).
pub const MAX_STEP_DEG: f32 = 22.0;
/// A turn passes through angles in between: at least one frame of the motion lies this far
/// inside the span from the frontal frame to the last one (a frontal and a turned photo, each
/// sent a few times, have none).
pub const INTERMEDIATE_MARGIN_DEG: f32 = 4.0;

/// The head's pose in one frame, as the face engine classified it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pose {
    Front,
    Turned(Turn),
    Unclear,
}

/// What was measured on one frame of the burst.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Frame {
    /// Head yaw in degrees, positive towards the member's right.
    pub yaw: f32,
    pub pose: Pose,
    /// `None` when neither clearly open nor clearly closed.
    pub mouth: Option<MouthState>,
    /// The face is the frontal selfie's (the match threshold is passed).
    pub same_face: bool,
    /// The frame's pixels are those of the frame before it.
    pub repeats_previous: bool,
}

/// Why a burst does not show a live member. Each refusal counts as a face attempt, like a
/// photo that does not follow the instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
pub enum LivenessFailure {
    #[error("more frames than a burst may have")]
    TooManyFrames,
    #[error("too few frames for a burst")]
    TooFewFrames,
    #[error("a frame repeats the previous one")]
    IdenticalFrames,
    #[error("a frame shows another face")]
    FaceChanged,
    #[error("the last frame does not follow the instruction")]
    NotFollowed,
    #[error("the burst does not start facing the camera")]
    NotFromFront,
    #[error("the head does not turn in one continuous motion")]
    NotContinuous,
}

impl LivenessFailure {
    /// The reason code kept for the reviewer.
    pub fn reason(&self) -> &'static str {
        match self {
            LivenessFailure::TooManyFrames => "liveness_too_many_frames",
            LivenessFailure::TooFewFrames => "liveness_too_few_frames",
            LivenessFailure::IdenticalFrames => "liveness_identical_frames",
            LivenessFailure::FaceChanged => "liveness_face_changed",
            LivenessFailure::NotFollowed => "angled_instruction_not_followed",
            LivenessFailure::NotFromFront => "liveness_not_from_front",
            LivenessFailure::NotContinuous => "liveness_not_continuous",
        }
    }
}

/// How the angled selfie showed a live member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Liveness {
    /// A burst with a continuous turn from the front to the instructed pose.
    Burst,
    /// One still image: accepted, but the application goes to review.
    SingleFrame,
}

/// Checks the angled capture's frames (in capture order) against the instruction.
///
/// The burst may start before the member is ready (the camera loops, the member hesitates):
/// the motion is read from the last frontal frame on, and the frames before it must still be
/// the same face and not repeated.
pub fn check(frames: &[Frame], instruction: Instruction) -> Result<Liveness, LivenessFailure> {
    if frames.len() > MAX_BURST_FRAMES {
        return Err(LivenessFailure::TooManyFrames);
    }
    if frames.len() > 1 && frames.len() < MIN_BURST_FRAMES {
        return Err(LivenessFailure::TooFewFrames);
    }
    if frames.iter().any(|f| f.repeats_previous) {
        return Err(LivenessFailure::IdenticalFrames);
    }
    if frames.iter().any(|f| !f.same_face) {
        return Err(LivenessFailure::FaceChanged);
    }
    let last = frames.last().ok_or(LivenessFailure::TooFewFrames)?;
    if last.pose != Pose::Turned(instruction.turn) || last.mouth != Some(instruction.mouth) {
        return Err(LivenessFailure::NotFollowed);
    }
    if frames.len() == 1 {
        return Ok(Liveness::SingleFrame);
    }
    let start =
        frames[..frames.len() - 1].iter().rposition(|f| f.pose == Pose::Front).ok_or(LivenessFailure::NotFromFront)?;
    // Yaw measured towards the instructed side.
    let sign = match instruction.turn {
        Turn::Right => 1.0,
        Turn::Left => -1.0,
    };
    let motion = &frames[start..];
    let continuous = motion.windows(2).all(|w| {
        let step = sign * (w[1].yaw - w[0].yaw);
        (-YAW_JITTER_DEG..=MAX_STEP_DEG).contains(&step)
    });
    let (from, to) = (sign * motion[0].yaw, sign * last.yaw);
    let in_between = motion[1..motion.len() - 1].iter().any(|f| {
        let y = sign * f.yaw;
        y > from + INTERMEDIATE_MARGIN_DEG && y < to - INTERMEDIATE_MARGIN_DEG
    });
    if !continuous || !in_between {
        return Err(LivenessFailure::NotContinuous);
    }
    Ok(Liveness::Burst)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RIGHT_CLOSED: Instruction = Instruction { turn: Turn::Right, mouth: MouthState::Closed };

    fn frame(yaw: f32) -> Frame {
        let pose = if yaw.abs() <= 12.0 {
            Pose::Front
        } else if yaw >= 20.0 {
            Pose::Turned(Turn::Right)
        } else if yaw <= -20.0 {
            Pose::Turned(Turn::Left)
        } else {
            Pose::Unclear
        };
        Frame { yaw, pose, mouth: Some(MouthState::Closed), same_face: true, repeats_previous: false }
    }

    fn burst(yaws: &[f32]) -> Vec<Frame> {
        yaws.iter().map(|y| frame(*y)).collect()
    }

    #[test]
    fn a_turn_from_the_front_is_live() {
        assert_eq!(check(&burst(&[1.0, 2.0, 10.0, 18.0, 30.0, 34.0]), RIGHT_CLOSED), Ok(Liveness::Burst));
        let left = Instruction { turn: Turn::Left, mouth: MouthState::Closed };
        assert_eq!(check(&burst(&[-1.0, -15.0, -30.0]), left), Ok(Liveness::Burst));
    }

    #[test]
    fn a_burst_that_starts_late_is_read_from_its_last_frontal_frame() {
        // Looping or hesitating: turned, back to the front, then the turn.
        assert_eq!(check(&burst(&[30.0, 5.0, 15.0, 28.0]), RIGHT_CLOSED), Ok(Liveness::Burst));
    }

    #[test]
    fn a_single_still_is_accepted_for_review_only() {
        assert_eq!(check(&burst(&[30.0]), RIGHT_CLOSED), Ok(Liveness::SingleFrame));
        // …and must still follow the instruction.
        assert_eq!(check(&burst(&[-30.0]), RIGHT_CLOSED), Err(LivenessFailure::NotFollowed));
    }

    #[test]
    fn a_pair_of_photos_is_not_a_motion() {
        // A frontal photo, then a turned one, repeated with small changes: the jump is too big,
        // or (for a small turn) nothing lies in between.
        assert_eq!(check(&burst(&[0.0, 1.0, 32.0, 33.0]), RIGHT_CLOSED), Err(LivenessFailure::NotContinuous));
        assert_eq!(check(&burst(&[4.0, 5.0, 25.0, 25.0]), RIGHT_CLOSED), Err(LivenessFailure::NotContinuous));
        assert_eq!(check(&burst(&[4.0, 19.0, 24.0, 25.0, 25.0]), RIGHT_CLOSED), Ok(Liveness::Burst));
        assert_eq!(check(&burst(&[0.0, 32.0]), RIGHT_CLOSED), Err(LivenessFailure::TooFewFrames));
    }

    #[test]
    fn turning_the_wrong_way_first_or_back_and_forth_is_not_one_motion() {
        assert_eq!(check(&burst(&[0.0, 15.0, 5.0, 20.0, 30.0]), RIGHT_CLOSED), Ok(Liveness::Burst));
        assert_eq!(check(&burst(&[0.0, 15.0, 27.0, 15.0, 30.0]), RIGHT_CLOSED), Err(LivenessFailure::NotContinuous));
    }

    #[test]
    fn a_burst_without_a_frontal_frame_is_refused() {
        assert_eq!(check(&burst(&[25.0, 28.0, 30.0]), RIGHT_CLOSED), Err(LivenessFailure::NotFromFront));
        // The last frame alone being frontal cannot be the start.
        assert_eq!(check(&burst(&[25.0, 28.0, 5.0]), RIGHT_CLOSED), Err(LivenessFailure::NotFollowed));
    }

    #[test]
    fn identical_frames_another_face_and_too_many_frames_are_refused() {
        let mut frames = burst(&[0.0, 15.0, 30.0]);
        frames[2].repeats_previous = true;
        assert_eq!(check(&frames, RIGHT_CLOSED), Err(LivenessFailure::IdenticalFrames));
        let mut frames = burst(&[0.0, 15.0, 30.0]);
        frames[1].same_face = false;
        assert_eq!(check(&frames, RIGHT_CLOSED), Err(LivenessFailure::FaceChanged));
        let many: Vec<f32> = (0..=MAX_BURST_FRAMES).map(|i| i as f32 * 4.0).collect();
        assert_eq!(check(&burst(&many), RIGHT_CLOSED), Err(LivenessFailure::TooManyFrames));
    }

    #[test]
    fn the_last_frame_must_have_the_mouth_as_instructed() {
        let open = Instruction { turn: Turn::Right, mouth: MouthState::Open };
        assert_eq!(check(&burst(&[0.0, 15.0, 30.0]), open), Err(LivenessFailure::NotFollowed));
        let mut frames = burst(&[0.0, 15.0, 30.0]);
        frames[2].mouth = Some(MouthState::Open);
        assert_eq!(check(&frames, open), Ok(Liveness::Burst));
    }
}
