//! F4 健診・医療アクセス認証 (eKYC): the rules of an application, as a state machine. No I/O:
//! the service stores each state, so a member who closes the app resumes where they left off.
//!
//! ```text
//! Started ─「選択」─▶ DocumentChosen ─オモテ面─▶ FrontCaptured
//!   ─備考欄 no / ウラ面 (licence, history certificate only)─▶ DocumentCaptured ─「次へ」─▶ DocumentConfirmed
//!   ─frontal selfie, same face─▶ FrontalVerified ─angled selfie as instructed─▶ AngledVerified
//!   ─秘密の質問─▶ SecretSet ─「この内容で認証する」─▶ Completed (automatic) | PendingReview
//! PendingReview ─operator─▶ Approved | Rejected (the member may start again)
//! any state but Rejected ─operator─▶ Revoked (the member may start again)
//! Completed needs the face scores with margin and the document's text proving the roster person.
//! ```
//! Until the document is confirmed the member may retake it (back to DocumentChosen).

use rand::{CryptoRng, Rng};
use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

use crate::evidence::DocumentCheck;
use crate::liveness::Liveness;

/// Frontal selfies that do not match the document, per application, before the member is sent
/// to the customer center.
pub const MAX_FACE_ATTEMPTS: u32 = 5;

/// The identity documents the guide accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentKind {
    /// 運転免許証
    DriversLicense,
    /// マイナンバーカード
    MyNumberCard,
    /// 運転経歴証明書
    DrivingHistoryCertificate,
    /// 在留カード
    ResidenceCard,
}

/// What happens after the front of a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackPolicy {
    /// Ask whether the back's remarks field (備考欄) has entries; if so, capture the back.
    AskRemarksThenBack,
    /// Ask whether the remarks field has entries, but never capture the back (the My Number
    /// card's back carries the Individual Number).
    AskRemarksNeverBack,
    /// Front only.
    FrontOnly,
}

impl DocumentKind {
    pub const ALL: [DocumentKind; 4] = [
        DocumentKind::DriversLicense,
        DocumentKind::MyNumberCard,
        DocumentKind::DrivingHistoryCertificate,
        DocumentKind::ResidenceCard,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            DocumentKind::DriversLicense => "drivers_license",
            DocumentKind::MyNumberCard => "my_number_card",
            DocumentKind::DrivingHistoryCertificate => "driving_history_certificate",
            DocumentKind::ResidenceCard => "residence_card",
        }
    }

    pub fn parse(s: &str) -> Option<DocumentKind> {
        DocumentKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The guide's label.
    pub fn label_ja(&self) -> &'static str {
        match self {
            DocumentKind::DriversLicense => "運転免許証",
            DocumentKind::MyNumberCard => "マイナンバーカード",
            DocumentKind::DrivingHistoryCertificate => "運転経歴証明書",
            DocumentKind::ResidenceCard => "在留カード",
        }
    }

    pub fn back_policy(&self) -> BackPolicy {
        match self {
            DocumentKind::DriversLicense | DocumentKind::DrivingHistoryCertificate => BackPolicy::AskRemarksThenBack,
            DocumentKind::MyNumberCard => BackPolicy::AskRemarksNeverBack,
            DocumentKind::ResidenceCard => BackPolicy::FrontOnly,
        }
    }
}

/// Which way the member turns their head, from their own point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Turn {
    Right,
    Left,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MouthState {
    Closed,
    Open,
}

/// The angled selfie's instruction, e.g. 「右向きで口を閉じる」.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Instruction {
    pub turn: Turn,
    pub mouth: MouthState,
}

impl Instruction {
    /// One of the four instructions, chosen with a cryptographically secure generator so a
    /// member (or an attacker with prepared photos) cannot predict it.
    pub fn random<R: Rng + CryptoRng>(rng: &mut R) -> Instruction {
        let turn = if rng.gen::<bool>() { Turn::Right } else { Turn::Left };
        let mouth = if rng.gen::<bool>() { MouthState::Open } else { MouthState::Closed };
        Instruction { turn, mouth }
    }

    pub fn label_ja(&self) -> String {
        let turn = match self.turn {
            Turn::Right => "右向き",
            Turn::Left => "左向き",
        };
        let mouth = match self.mouth {
            MouthState::Closed => "口を閉じる",
            MouthState::Open => "口を開ける",
        };
        format!("{turn}で{mouth}")
    }

    pub fn label_en(&self) -> String {
        let turn = match self.turn {
            Turn::Right => "Turn to your right",
            Turn::Left => "Turn to your left",
        };
        let mouth = match self.mouth {
            MouthState::Closed => "keep your mouth closed",
            MouthState::Open => "open your mouth",
        };
        format!("{turn} and {mouth}")
    }
}

/// The shortest secret answer accepted, counted after [`normalize_secret_answer`]. The
/// question is a step-up before health data for members without a passkey, so it must not be
/// a short word a relative could guess (NIST SP 800-63B discourages knowledge questions; the
/// presets avoid "textbook" questions such as a mother's maiden name or a first pet).
pub const SECRET_ANSWER_MIN_CHARS: usize = 6;

/// A secret answer as compared: Unicode NFKC (full-width letters and digits become ASCII,
/// half-width kana full-width), lower case, no spaces of any width. `None` when nothing is
/// left.
pub fn normalize_secret_answer(answer: &str) -> Option<String> {
    let normalized: String = answer.nfkc().flat_map(char::to_lowercase).filter(|c| !c.is_whitespace()).collect();
    (!normalized.is_empty()).then_some(normalized)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EkycState {
    Started,
    DocumentChosen,
    FrontCaptured,
    DocumentCaptured,
    DocumentConfirmed,
    FrontalVerified,
    AngledVerified,
    SecretSet,
    /// Every automatic check passed with margin.
    Completed,
    /// Waiting for an operator.
    PendingReview,
    Approved,
    Rejected,
    /// Completed or approved, then withdrawn by an operator.
    Revoked,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EkycError {
    #[error("this step is not possible in state {0:?}")]
    WrongState(EkycState),
    #[error("the back of this document is never captured")]
    BackNotAllowed,
    #[error("too many face photos did not match the document")]
    FaceAttemptsExhausted,
}

/// The automatic checks' scores, kept with the decision.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    /// Document face vs frontal selfie (cosine similarity).
    pub document_frontal: f32,
    /// Document face vs angled selfie.
    pub document_angled: f32,
    /// Frontal vs angled selfie.
    pub frontal_angled: f32,
}

/// Thresholds of the automatic decision: a comparison passes at `match_threshold`, and the
/// application is approved without a human only when every score clears it by `auto_margin`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecisionPolicy {
    pub match_threshold: f32,
    pub auto_margin: f32,
}

impl DecisionPolicy {
    pub fn passes(&self, score: f32) -> bool {
        score >= self.match_threshold
    }

    /// `true`: approve automatically; `false`: send to review.
    pub fn auto_approve(&self, s: &Scores) -> bool {
        let bar = self.match_threshold + self.auto_margin;
        s.document_frontal >= bar && s.document_angled >= bar && s.frontal_angled >= bar
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EkycApplication {
    pub state: EkycState,
    pub document: Option<DocumentKind>,
    /// The member said the remarks field (備考欄) has entries.
    pub remarks: Option<bool>,
    pub back_captured: bool,
    pub face_attempts: u32,
    pub instruction: Option<Instruction>,
    pub scores: Option<Scores>,
    /// How the angled selfie showed a live member (see [`crate::liveness`]); `None` before it,
    /// and on applications from before the burst existed (they go to review).
    #[serde(default)]
    pub liveness: Option<Liveness>,
    /// The passive presentation-attack check flagged a selfie (a printed photo or a screen):
    /// a reviewer looks, the member is not refused on that alone.
    #[serde(default)]
    pub spoof_suspected: bool,
}

impl Default for EkycApplication {
    fn default() -> Self {
        Self::new()
    }
}

impl EkycApplication {
    pub fn new() -> Self {
        EkycApplication {
            state: EkycState::Started,
            document: None,
            remarks: None,
            back_captured: false,
            face_attempts: 0,
            instruction: None,
            scores: None,
            liveness: None,
            spoof_suspected: false,
        }
    }

    fn expect(&self, states: &[EkycState]) -> Result<(), EkycError> {
        if states.contains(&self.state) {
            Ok(())
        } else {
            Err(EkycError::WrongState(self.state))
        }
    }

    /// 「選択」; also a retake from any document step before confirmation.
    pub fn choose_document(&mut self, kind: DocumentKind) -> Result<(), EkycError> {
        self.expect(&[
            EkycState::Started,
            EkycState::DocumentChosen,
            EkycState::FrontCaptured,
            EkycState::DocumentCaptured,
        ])?;
        self.document = Some(kind);
        self.remarks = None;
        self.back_captured = false;
        self.state = EkycState::DocumentChosen;
        Ok(())
    }

    /// The front was captured (and had exactly one usable face).
    pub fn front_captured(&mut self) -> Result<(), EkycError> {
        self.expect(&[EkycState::DocumentChosen])?;
        self.state = match self.document.map(|d| d.back_policy()) {
            Some(BackPolicy::FrontOnly) => EkycState::DocumentCaptured,
            _ => EkycState::FrontCaptured,
        };
        Ok(())
    }

    /// The answer to 「備考欄に記載はありますか」. For a licence or history certificate with
    /// remarks, the back is captured next; otherwise the document is complete.
    pub fn answer_remarks(&mut self, has_entries: bool) -> Result<(), EkycError> {
        self.expect(&[EkycState::FrontCaptured])?;
        self.remarks = Some(has_entries);
        let needs_back = has_entries && self.document.map(|d| d.back_policy()) == Some(BackPolicy::AskRemarksThenBack);
        if !needs_back {
            self.state = EkycState::DocumentCaptured;
        }
        Ok(())
    }

    /// Whether the next capture is the back (ウラ面).
    pub fn wants_back(&self) -> bool {
        self.state == EkycState::FrontCaptured && self.remarks == Some(true)
    }

    pub fn back_captured(&mut self) -> Result<(), EkycError> {
        if self.document.map(|d| d.back_policy()) != Some(BackPolicy::AskRemarksThenBack) {
            return Err(EkycError::BackNotAllowed);
        }
        if !self.wants_back() {
            return Err(EkycError::WrongState(self.state));
        }
        self.back_captured = true;
        self.state = EkycState::DocumentCaptured;
        Ok(())
    }

    /// 「次へ」 under the captured images.
    pub fn confirm_document(&mut self) -> Result<(), EkycError> {
        self.expect(&[EkycState::DocumentCaptured])?;
        self.state = EkycState::DocumentConfirmed;
        Ok(())
    }

    /// A frontal selfie was compared with the document. A match moves on and fixes the angled
    /// instruction; a mismatch counts an attempt (「顔写真が一致しません」).
    pub fn frontal_result<R: Rng + CryptoRng>(&mut self, matched: bool, rng: &mut R) -> Result<(), EkycError> {
        self.expect(&[EkycState::DocumentConfirmed])?;
        if self.face_attempts >= MAX_FACE_ATTEMPTS {
            return Err(EkycError::FaceAttemptsExhausted);
        }
        if matched {
            self.state = EkycState::FrontalVerified;
            self.instruction = Some(Instruction::random(rng));
        } else {
            self.face_attempts += 1;
            if self.face_attempts >= MAX_FACE_ATTEMPTS {
                return Err(EkycError::FaceAttemptsExhausted);
            }
        }
        Ok(())
    }

    /// Whether no face photo may be tried any more (frontal and angled failures count
    /// together): the member is sent to the customer center.
    pub fn attempts_exhausted(&self) -> bool {
        self.face_attempts >= MAX_FACE_ATTEMPTS
    }

    /// The angled selfie did not follow the instruction or was not the same person: the
    /// attempt counts, and a new instruction is drawn, so one pose cannot be tried with
    /// prepared photos until one passes.
    pub fn angled_failed<R: Rng + CryptoRng>(&mut self, rng: &mut R) -> Result<(), EkycError> {
        self.expect(&[EkycState::FrontalVerified])?;
        self.face_attempts += 1;
        self.instruction = Some(Instruction::random(rng));
        if self.attempts_exhausted() {
            return Err(EkycError::FaceAttemptsExhausted);
        }
        Ok(())
    }

    /// The angled selfie followed the instruction and is the same person; `liveness` says
    /// whether it came as a burst or as one still, `spoof_suspected` whether the passive
    /// presentation-attack check flagged a selfie.
    pub fn angled_verified(
        &mut self,
        scores: Scores,
        liveness: Liveness,
        spoof_suspected: bool,
    ) -> Result<(), EkycError> {
        self.expect(&[EkycState::FrontalVerified])?;
        self.scores = Some(scores);
        self.liveness = Some(liveness);
        self.spoof_suspected = spoof_suspected;
        self.state = EkycState::AngledVerified;
        Ok(())
    }

    pub fn secret_set(&mut self) -> Result<(), EkycError> {
        self.expect(&[EkycState::AngledVerified, EkycState::SecretSet])?;
        self.state = EkycState::SecretSet;
        Ok(())
    }

    /// 「この内容で認証する」: approved at once when every score clears the margin AND the
    /// document's text proves it is the roster person's (`document`, see
    /// [`DocumentCheck::proves_person`]) AND the angled selfie came as a live burst that the
    /// presentation-attack check did not flag; otherwise an application (申請) for review. A
    /// face match alone never completes an application.
    pub fn submit(
        &mut self,
        policy: &DecisionPolicy,
        document: Option<&DocumentCheck>,
    ) -> Result<EkycState, EkycError> {
        self.expect(&[EkycState::SecretSet])?;
        let auto = self.scores.is_some_and(|s| policy.auto_approve(&s))
            && document.is_some_and(|d| d.proves_person())
            && self.liveness == Some(Liveness::Burst)
            && !self.spoof_suspected;
        self.state = if auto { EkycState::Completed } else { EkycState::PendingReview };
        Ok(self.state)
    }

    /// An operator's decision on a pending application.
    pub fn review(&mut self, approve: bool) -> Result<(), EkycError> {
        self.expect(&[EkycState::PendingReview])?;
        self.state = if approve { EkycState::Approved } else { EkycState::Rejected };
        Ok(())
    }

    /// An operator withdrew the application (a wrong binding found, before or after the
    /// decision): health data closes, and the member may start again. Not for rejected or
    /// already revoked applications.
    pub fn revoke(&mut self) -> Result<(), EkycError> {
        if matches!(self.state, EkycState::Rejected | EkycState::Revoked) {
            return Err(EkycError::WrongState(self.state));
        }
        self.state = EkycState::Revoked;
        Ok(())
    }

    /// Health data is open to the member.
    pub fn is_authenticated(&self) -> bool {
        matches!(self.state, EkycState::Completed | EkycState::Approved)
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_failed_angled_selfie_counts_and_draws_a_new_instruction() {
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut a = EkycApplication::new();
        a.choose_document(DocumentKind::ResidenceCard).expect("choose");
        a.front_captured().expect("front");
        a.confirm_document().expect("confirm");
        a.frontal_result(true, &mut rng).expect("frontal");
        let mut seen = std::collections::HashSet::new();
        for n in 1..MAX_FACE_ATTEMPTS {
            a.angled_failed(&mut rng).expect("still allowed");
            assert_eq!(a.face_attempts, n);
            seen.insert(a.instruction.expect("instruction"));
        }
        assert!(seen.len() > 1, "instructions are redrawn");
        assert_eq!(a.angled_failed(&mut rng), Err(EkycError::FaceAttemptsExhausted));
        assert!(a.attempts_exhausted());
    }

    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn scores(v: f32) -> Scores {
        Scores { document_frontal: v, document_angled: v, frontal_angled: v }
    }

    const POLICY: DecisionPolicy = DecisionPolicy { match_threshold: 0.5, auto_margin: 0.1 };

    fn through_document(kind: DocumentKind, remarks: bool) -> EkycApplication {
        let mut a = EkycApplication::new();
        a.choose_document(kind).expect("choose");
        a.front_captured().expect("front");
        if a.state == EkycState::FrontCaptured {
            a.answer_remarks(remarks).expect("remarks");
            if a.wants_back() {
                a.back_captured().expect("back");
            }
        }
        a.confirm_document().expect("confirm");
        a
    }

    #[test]
    fn document_rules_per_kind() {
        let licence = through_document(DocumentKind::DriversLicense, true);
        assert!(licence.back_captured);
        let licence = through_document(DocumentKind::DrivingHistoryCertificate, false);
        assert!(!licence.back_captured);
        let residence = through_document(DocumentKind::ResidenceCard, true);
        assert_eq!((residence.back_captured, residence.remarks), (false, None), "front only, no question");

        // My Number card: the remarks question is asked, the back is never captured.
        let mut mn = EkycApplication::new();
        mn.choose_document(DocumentKind::MyNumberCard).expect("choose");
        mn.front_captured().expect("front");
        assert_eq!(mn.back_captured(), Err(EkycError::BackNotAllowed));
        mn.answer_remarks(true).expect("remarks");
        assert_eq!(mn.state, EkycState::DocumentCaptured);
        assert!(!mn.wants_back());
        assert_eq!(mn.back_captured(), Err(EkycError::BackNotAllowed));
        assert_eq!(mn.remarks, Some(true));
    }

    #[test]
    fn retake_before_confirmation_only() {
        let mut a = EkycApplication::new();
        a.choose_document(DocumentKind::DriversLicense).expect("choose");
        a.front_captured().expect("front");
        a.choose_document(DocumentKind::ResidenceCard).expect("retake with another document");
        assert_eq!((a.state, a.document), (EkycState::DocumentChosen, Some(DocumentKind::ResidenceCard)));
        a.front_captured().expect("front");
        a.confirm_document().expect("confirm");
        assert_eq!(
            a.choose_document(DocumentKind::DriversLicense),
            Err(EkycError::WrongState(EkycState::DocumentConfirmed))
        );
    }

    #[test]
    fn face_attempts_are_limited() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut a = through_document(DocumentKind::ResidenceCard, false);
        for _ in 0..MAX_FACE_ATTEMPTS - 1 {
            a.frontal_result(false, &mut rng).expect("retry allowed");
        }
        assert_eq!(a.frontal_result(false, &mut rng), Err(EkycError::FaceAttemptsExhausted));
        assert_eq!(
            a.frontal_result(true, &mut rng),
            Err(EkycError::FaceAttemptsExhausted),
            "even a match is refused now"
        );
    }

    #[test]
    fn automatic_completion_needs_the_face_scores_and_the_document_proving_the_person() {
        use crate::evidence::{BirthDateCheck, DocumentCheck, NameCheck};
        let proven = DocumentCheck { birth_date: BirthDateCheck::Match, name: NameCheck::NotOnRoster };
        let other = DocumentCheck { birth_date: BirthDateCheck::Mismatch, name: NameCheck::NotOnRoster };
        let unread = DocumentCheck { birth_date: BirthDateCheck::Unreadable, name: NameCheck::NotOnRoster };
        let wrong_name = DocumentCheck { birth_date: BirthDateCheck::Match, name: NameCheck::NotFound };
        let mut rng = StdRng::seed_from_u64(1);
        let cases = [
            (0.75, Some(proven), EkycState::Completed),
            (0.55, Some(proven), EkycState::PendingReview),
            (0.75, Some(other), EkycState::PendingReview),
            (0.75, Some(unread), EkycState::PendingReview),
            (0.75, Some(wrong_name), EkycState::PendingReview),
            (0.75, None, EkycState::PendingReview),
        ];
        for (score, document, expected) in cases {
            let mut a = through_document(DocumentKind::DriversLicense, false);
            a.frontal_result(true, &mut rng).expect("frontal");
            assert!(a.instruction.is_some(), "the instruction is fixed once the frontal selfie passed");
            a.angled_verified(scores(score), Liveness::Burst, false).expect("angled");
            a.secret_set().expect("secret");
            assert_eq!(a.submit(&POLICY, document.as_ref()), Ok(expected), "{score} {document:?}");
            assert_eq!(a.is_authenticated(), expected == EkycState::Completed);
        }
        // A still instead of a burst, or a selfie the presentation-attack check flagged: review.
        for (liveness, spoof) in [(Liveness::SingleFrame, false), (Liveness::Burst, true)] {
            let mut a = through_document(DocumentKind::DriversLicense, false);
            a.frontal_result(true, &mut rng).expect("frontal");
            a.angled_verified(scores(0.75), liveness, spoof).expect("angled");
            a.secret_set().expect("secret");
            assert_eq!(a.submit(&POLICY, Some(&proven)), Ok(EkycState::PendingReview), "{liveness:?} {spoof}");
        }
        let mut a = through_document(DocumentKind::DriversLicense, false);
        a.frontal_result(true, &mut rng).expect("frontal");
        a.angled_verified(scores(0.55), Liveness::Burst, false).expect("angled");
        a.secret_set().expect("secret");
        a.submit(&POLICY, Some(&proven)).expect("submit");
        a.review(true).expect("approve");
        assert!(a.is_authenticated());
        assert_eq!(a.review(false), Err(EkycError::WrongState(EkycState::Approved)), "decided once");
        a.revoke().expect("revoke");
        assert!(!a.is_authenticated());
        assert_eq!(a.revoke(), Err(EkycError::WrongState(EkycState::Revoked)));
    }

    #[test]
    fn instructions_cover_all_four_and_read_like_the_guide() {
        let mut rng = StdRng::seed_from_u64(42);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            seen.insert(Instruction::random(&mut rng).label_ja());
        }
        assert_eq!(seen.len(), 4, "{seen:?}");
        assert!(seen.contains("右向きで口を閉じる") && seen.contains("左向きで口を開ける"));
    }

    #[test]
    fn secret_answers_normalize_width_case_and_spaces() {
        assert_eq!(normalize_secret_answer(" Ｔａｒｏ　ＹＡＭＡＤＡ "), Some("taroyamada".into()));
        assert_eq!(normalize_secret_answer("ﾀﾛｳ 1２3"), Some("タロウ123".into()));
        assert_eq!(normalize_secret_answer(" 　 "), None);
    }

    #[test]
    fn document_kinds_round_trip() {
        for k in DocumentKind::ALL {
            assert_eq!(DocumentKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(DocumentKind::MyNumberCard.label_ja(), "マイナンバーカード");
    }
}
