//! Liveness geometry from FaceMesh's 468 landmarks: head yaw, pitch and roll in degrees and a
//! mouth-open ratio with hysteresis.
//!
//! Directions are from the **member's** point of view: "right" is the member's own right.
//! In an ordinary (non-mirrored) camera image a member turning to their right moves their nose
//! towards the image's left. Front-camera previews are often mirrored; the caller says whether
//! the image is, and [`HeadPose::from_landmarks`] flips yaw and roll accordingly.

use serde::Serialize;

/// A landmark in input-image pixels (z: relative depth, smaller = nearer the camera).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Point3 {
    pub x: f32,
    pub y: f32,
    pub z: f32,
}

/// Indices into FaceMesh's canonical 468-point topology.
pub mod idx {
    pub const NOSE_TIP: usize = 1;
    pub const FOREHEAD: usize = 10;
    pub const CHIN: usize = 152;
    /// The contour point on the member's right cheek (image left when not mirrored).
    pub const CHEEK_RIGHT: usize = 234;
    pub const CHEEK_LEFT: usize = 454;
    /// Outer corner of the member's right eye (image left when not mirrored).
    pub const EYE_RIGHT_OUTER: usize = 33;
    pub const EYE_LEFT_OUTER: usize = 263;
    pub const EYE_RIGHT_INNER: usize = 133;
    pub const EYE_LEFT_INNER: usize = 362;
    pub const LIP_UPPER_INNER: usize = 13;
    pub const LIP_LOWER_INNER: usize = 14;
    pub const MOUTH_RIGHT: usize = 61;
    pub const MOUTH_LEFT: usize = 291;
    pub const COUNT: usize = 468;
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct HeadPose {
    /// Positive: turned to the member's right.
    pub yaw: f32,
    /// Positive: looking up.
    pub pitch: f32,
    /// Positive: head tilted towards the member's right shoulder.
    pub roll: f32,
    /// Inner-lip gap over mouth width: about 0 closed, above 0.3 clearly open.
    pub mouth_open: f32,
}

fn dist(a: Point3, b: Point3) -> f32 {
    ((a.x - b.x).powi(2) + (a.y - b.y).powi(2)).sqrt()
}

fn asin_deg(r: f32) -> f32 {
    r.clamp(-1.0, 1.0).asin().to_degrees()
}

impl HeadPose {
    /// `None` unless there are exactly 468 landmarks and the face has a usable size.
    pub fn from_landmarks(points: &[Point3], mirrored: bool) -> Option<HeadPose> {
        if points.len() != idx::COUNT {
            return None;
        }
        let p = |i: usize| points[i];
        let (cr, cl) = (p(idx::CHEEK_RIGHT), p(idx::CHEEK_LEFT));
        let half_width = dist(cr, cl) / 2.0;
        let (top, chin) = (p(idx::FOREHEAD), p(idx::CHIN));
        let half_height = dist(top, chin) / 2.0;
        if half_width < 2.0 || half_height < 2.0 {
            return None;
        }
        let nose = p(idx::NOSE_TIP);
        // Yaw: where the nose tip sits between the two cheek contours.
        let mid_x = (cr.x + cl.x) / 2.0;
        let yaw_image = -asin_deg((nose.x - mid_x) / half_width);
        // Pitch: where the nose tip sits between forehead and chin (neutral slightly below
        // the middle on FaceMesh's canonical face).
        let mid_y = (top.y + chin.y) / 2.0;
        let pitch = -asin_deg((nose.y - mid_y) / half_height - NEUTRAL_NOSE_DROP);
        // Roll: the line through the outer eye corners (member's right → left).
        let (er, el) = (p(idx::EYE_RIGHT_OUTER), p(idx::EYE_LEFT_OUTER));
        let roll_image = (el.y - er.y).atan2(el.x - er.x).to_degrees();
        let mouth_width = dist(p(idx::MOUTH_RIGHT), p(idx::MOUTH_LEFT));
        let mouth_open =
            if mouth_width > 0.5 { dist(p(idx::LIP_UPPER_INNER), p(idx::LIP_LOWER_INNER)) / mouth_width } else { 0.0 };
        let (yaw, roll) = if mirrored { (-yaw_image, -roll_image) } else { (yaw_image, roll_image) };
        Some(HeadPose { yaw, pitch, roll, mouth_open })
    }
}

/// Offset of the nose tip below the forehead–chin midpoint on a frontal face, in half-heights.
const NEUTRAL_NOSE_DROP: f32 = 0.1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Turn {
    Front,
    Right,
    Left,
    /// Between the thresholds: neither clearly frontal nor clearly turned.
    Unclear,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mouth {
    Open,
    Closed,
    Unclear,
}

/// Thresholds with a dead band between them (hysteresis): a value in the band is "unclear"
/// rather than flipping between two answers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub front_max_yaw: f32,
    pub turned_min_yaw: f32,
    pub mouth_open_min: f32,
    pub mouth_closed_max: f32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds { front_max_yaw: 12.0, turned_min_yaw: 20.0, mouth_open_min: 0.3, mouth_closed_max: 0.1 }
    }
}

impl Thresholds {
    pub fn turn(&self, pose: &HeadPose) -> Turn {
        if pose.yaw.abs() <= self.front_max_yaw {
            Turn::Front
        } else if pose.yaw >= self.turned_min_yaw {
            Turn::Right
        } else if pose.yaw <= -self.turned_min_yaw {
            Turn::Left
        } else {
            Turn::Unclear
        }
    }

    pub fn mouth(&self, pose: &HeadPose) -> Mouth {
        if pose.mouth_open > self.mouth_open_min {
            Mouth::Open
        } else if pose.mouth_open < self.mouth_closed_max {
            Mouth::Closed
        } else {
            Mouth::Unclear
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A schematic frontal face (member facing the camera, not mirrored), rotated by `yaw`
    /// degrees to the member's right and projected orthographically; mouth gap `gap` px.
    pub(crate) fn synthetic(yaw: f32, gap: f32) -> Vec<Point3> {
        let mut pts = vec![Point3 { x: 0.0, y: 0.0, z: 0.0 }; idx::COUNT];
        // (x to the image right when frontal and not mirrored, y down, z towards the back).
        let model: [(usize, f32, f32, f32); 13] = [
            (idx::NOSE_TIP, 0.0, 10.0, -30.0),
            (idx::FOREHEAD, 0.0, -80.0, 0.0),
            (idx::CHIN, 0.0, 80.0, 0.0),
            (idx::CHEEK_RIGHT, -60.0, 0.0, 10.0),
            (idx::CHEEK_LEFT, 60.0, 0.0, 10.0),
            (idx::EYE_RIGHT_OUTER, -40.0, -20.0, 0.0),
            (idx::EYE_LEFT_OUTER, 40.0, -20.0, 0.0),
            (idx::EYE_RIGHT_INNER, -15.0, -20.0, 0.0),
            (idx::EYE_LEFT_INNER, 15.0, -20.0, 0.0),
            (idx::LIP_UPPER_INNER, 0.0, 40.0 - gap / 2.0, -10.0),
            (idx::LIP_LOWER_INNER, 0.0, 40.0 + gap / 2.0, -10.0),
            (idx::MOUTH_RIGHT, -25.0, 40.0, 0.0),
            (idx::MOUTH_LEFT, 25.0, 40.0, 0.0),
        ];
        // The member turning to their right rotates the nose towards the image's left.
        let a = (-yaw).to_radians();
        for (i, x, y, z) in model {
            pts[i] = Point3 { x: 200.0 + x * a.cos() - z * a.sin(), y: 200.0 + y, z: x * a.sin() + z * a.cos() };
        }
        pts
    }

    pub(crate) fn mirror(points: &[Point3], width: f32) -> Vec<Point3> {
        points.iter().map(|p| Point3 { x: width - p.x, ..*p }).collect()
    }

    #[test]
    fn frontal_face_is_front_with_closed_mouth() {
        let pose = HeadPose::from_landmarks(&synthetic(0.0, 0.0), false).expect("pose");
        assert!(pose.yaw.abs() < 2.0, "{pose:?}");
        assert!(pose.pitch.abs() < 8.0, "{pose:?}");
        assert!(pose.roll.abs() < 1.0, "{pose:?}");
        let t = Thresholds::default();
        assert_eq!((t.turn(&pose), t.mouth(&pose)), (Turn::Front, Mouth::Closed));
    }

    #[test]
    fn turning_right_and_left_from_the_members_point_of_view() {
        let t = Thresholds::default();
        let right = HeadPose::from_landmarks(&synthetic(35.0, 0.0), false).expect("pose");
        assert!(right.yaw > 20.0, "{right:?}");
        assert_eq!(t.turn(&right), Turn::Right);
        let left = HeadPose::from_landmarks(&synthetic(-35.0, 0.0), false).expect("pose");
        assert_eq!(t.turn(&left), Turn::Left);
        // The 2-D estimate reads small turns low (22° reads about 15.6° on this schematic face).
        assert_eq!(t.turn(&HeadPose::from_landmarks(&synthetic(22.0, 0.0), false).expect("pose")), Turn::Unclear);
    }

    #[test]
    fn a_mirrored_image_flips_the_yaw_sign_and_the_flag_restores_it() {
        let raw = synthetic(35.0, 0.0);
        let mirrored_pixels = mirror(&raw, 400.0);
        // Read as if it were not mirrored, the mirrored picture looks like a turn to the left…
        let naive = HeadPose::from_landmarks(&mirrored_pixels, false).expect("pose");
        let plain = HeadPose::from_landmarks(&raw, false).expect("pose");
        assert!((naive.yaw + plain.yaw).abs() < 0.5, "{naive:?} vs {plain:?}");
        // …and declaring it mirrored gives the member's real direction back.
        let declared = HeadPose::from_landmarks(&mirrored_pixels, true).expect("pose");
        assert!((declared.yaw - plain.yaw).abs() < 0.5);
        assert_eq!(Thresholds::default().turn(&declared), Turn::Right);
    }

    #[test]
    fn mouth_open_ratio_with_hysteresis() {
        let t = Thresholds::default();
        let open = HeadPose::from_landmarks(&synthetic(0.0, 20.0), false).expect("pose");
        assert!((open.mouth_open - 0.4).abs() < 0.01, "{open:?}");
        assert_eq!(t.mouth(&open), Mouth::Open);
        let between = HeadPose::from_landmarks(&synthetic(0.0, 10.0), false).expect("pose");
        assert_eq!(t.mouth(&between), Mouth::Unclear);
        assert!(HeadPose::from_landmarks(&synthetic(0.0, 0.0)[..100], false).is_none());
    }
}
