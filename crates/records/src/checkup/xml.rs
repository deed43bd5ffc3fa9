//! The streaming CDA reader behind [`super::parse_document`]: one pass of quick-xml pull events,
//! a stack of element kinds, no tree.

use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::name::{Namespace, ResolveResult};
use quick_xml::{NsReader, XmlVersion};
use time::{Date, Month};

use super::{CheckupDocument, CheckupError, CodeProblem, Examinee, Facility, Field, Gender, Item, Limits, Value};
use crate::jlac10::{self, ReferenceSpec, JLAC10_OID, QUALITATIVE_OID};

const HL7_NS: &[u8] = b"urn:hl7-org:v3";
const XSI_NS: &[u8] = b"http://www.w3.org/2001/XMLSchema-instance";

/// `recordTarget/patientRole/id@root` of the 保険者番号.
pub const OID_INSURER_NUMBER: &str = "1.2.392.200119.6.101";
/// `recordTarget/patientRole/id@root` of the 被保険者証等記号.
pub const OID_CARD_SYMBOL: &str = "1.2.392.200119.6.204";
/// `recordTarget/patientRole/id@root` of the 被保険者証等番号.
pub const OID_CARD_NUMBER: &str = "1.2.392.200119.6.205";
/// `recordTarget/patientRole/id@root` of the 被保険者証等枝番.
pub const OID_CARD_BRANCH: &str = "1.2.392.200119.6.211";
/// `representedOrganization/id@root` of the 健診機関番号.
pub const OID_FACILITY: &str = "1.2.392.200119.6.102";
/// `ClinicalDocument/code@codeSystem` of the 報告区分 (1x 特定健診, 2x 特定保健指導).
pub const OID_REPORT_KIND: &str = "1.2.392.200119.6.1001";

/// Longest identifier accepted (a card number is at most 20 full-width characters).
const MAX_ID_CHARS: usize = 64;
/// Longest item code accepted.
const MAX_CODE_CHARS: usize = 64;
/// Longest element name kept in an error's element path (the path is at most
/// [`Limits::max_depth`] names).
const MAX_PATH_NAME_CHARS: usize = 40;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum El {
    ClinicalDocument,
    Code,
    RecordTarget,
    PatientRole,
    Patient,
    Id,
    BirthTime,
    AdministrativeGenderCode,
    DocumentationOf,
    ServiceEvent,
    EffectiveTime,
    Low,
    StructuredBody,
    Observation,
    Value,
    InterpretationCode,
    Author,
    AssignedAuthor,
    RepresentedOrganization,
    Name,
    Other,
}

fn classify(local: &[u8]) -> El {
    match local {
        b"ClinicalDocument" => El::ClinicalDocument,
        b"code" => El::Code,
        b"recordTarget" => El::RecordTarget,
        b"patientRole" => El::PatientRole,
        b"patient" => El::Patient,
        b"id" => El::Id,
        b"birthTime" => El::BirthTime,
        b"administrativeGenderCode" => El::AdministrativeGenderCode,
        b"documentationOf" => El::DocumentationOf,
        b"serviceEvent" => El::ServiceEvent,
        b"effectiveTime" => El::EffectiveTime,
        b"low" => El::Low,
        b"structuredBody" => El::StructuredBody,
        b"observation" => El::Observation,
        b"value" => El::Value,
        b"interpretationCode" => El::InterpretationCode,
        b"author" => El::Author,
        b"assignedAuthor" => El::AssignedAuthor,
        b"representedOrganization" => El::RepresentedOrganization,
        b"name" => El::Name,
        _ => El::Other,
    }
}

/// The attributes this reader uses, whatever element they are on.
#[derive(Debug, Default, Clone)]
struct Attrs {
    root: Option<String>,
    extension: Option<String>,
    code: Option<String>,
    code_system: Option<String>,
    display_name: Option<String>,
    value: Option<String>,
    unit: Option<String>,
    null_flavor: Option<String>,
    xsi_type: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    FacilityName,
    ValueText,
}

struct Capture {
    target: Target,
    /// Stack length while inside the captured element.
    depth: usize,
    text: String,
}

#[derive(Default)]
struct Observation {
    /// Index of the `observation` element in the stack.
    depth: usize,
    /// Its number in document order, from 1 (for errors).
    number: usize,
    /// Its element path (local names from the root), for errors.
    path: String,
    code: Option<Attrs>,
    value: Option<(Attrs, String)>,
    effective: Option<String>,
    interpretation: Option<String>,
}

struct Pending {
    item: Item,
    spec: Option<ReferenceSpec>,
    canonical_unit: Option<&'static str>,
}

struct Parser<'l> {
    limits: &'l Limits,
    stack: Vec<El>,
    /// Local names of the open elements, `/`-separated, and where each one starts.
    path: String,
    path_marks: Vec<usize>,
    root_seen: bool,
    report_kind: Option<Attrs>,
    insurer: Option<String>,
    symbol: Option<String>,
    number: Option<String>,
    branch: Option<String>,
    birth: Option<String>,
    gender: Option<Attrs>,
    service_date: Option<String>,
    facility_number: Option<String>,
    facility_name: Option<String>,
    capture: Option<Capture>,
    open: Vec<Observation>,
    observations: usize,
    first_observation_date: Option<String>,
    items: Vec<Pending>,
}

pub(super) fn parse(bytes: &[u8], limits: &Limits) -> Result<CheckupDocument, CheckupError> {
    let bytes = strip_bom(bytes)?;
    if std::str::from_utf8(bytes).is_err() {
        return Err(CheckupError::NotUtf8);
    }
    let mut reader = NsReader::from_reader(bytes);
    {
        let config = reader.config_mut();
        config.check_end_names = true;
        config.check_comments = true;
        config.expand_empty_elements = false;
        config.allow_dangling_amp = false;
    }
    let mut p = Parser::new(limits);
    loop {
        let (ns, event) = match reader.read_resolved_event() {
            Ok(pair) => pair,
            Err(e) => return Err(map_xml_error(e, reader.error_position())),
        };
        let hl7 = matches!(ns, ResolveResult::Bound(Namespace(n)) if n == HL7_NS);
        let position = reader.buffer_position();
        match event {
            Event::Start(e) => p.start(&reader, hl7, &e, false)?,
            Event::Empty(e) => p.start(&reader, hl7, &e, true)?,
            Event::End(_) => p.end()?,
            Event::Text(t) => {
                let text = t.xml10_content().map_err(|_| CheckupError::NotUtf8)?;
                p.text(&text, position)?;
            }
            Event::CData(c) => {
                let text = c.decode().map_err(|_| CheckupError::NotUtf8)?;
                p.text(&text, position)?;
            }
            Event::GeneralRef(r) => p.reference(&r, position)?,
            Event::DocType(_) => return Err(CheckupError::Doctype),
            Event::Decl(d) => {
                if let Some(encoding) = d.encoding() {
                    let encoding = encoding.map_err(|e| malformed(position, e))?;
                    let declared: String = String::from_utf8_lossy(&encoding).trim().chars().take(32).collect();
                    if !matches!(declared.to_ascii_lowercase().as_str(), "utf-8" | "utf8") {
                        return Err(CheckupError::UnsupportedEncoding { declared });
                    }
                }
            }
            Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    p.finish()
}

fn strip_bom(bytes: &[u8]) -> Result<&[u8], CheckupError> {
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        return Ok(rest);
    }
    if bytes.starts_with(b"\xFE\xFF") || bytes.starts_with(b"\xFF\xFE") {
        return Err(CheckupError::UnsupportedEncoding { declared: "UTF-16".into() });
    }
    Ok(bytes)
}

fn malformed(position: u64, e: impl std::fmt::Display) -> CheckupError {
    CheckupError::Malformed { position, message: e.to_string() }
}

fn map_xml_error(e: quick_xml::Error, position: u64) -> CheckupError {
    use quick_xml::errors::{IllFormedError, SyntaxError};
    use quick_xml::escape::EscapeError;
    match e {
        quick_xml::Error::Escape(EscapeError::UnrecognizedEntity(_, name)) => {
            CheckupError::UndefinedEntity { name: name.chars().take(64).collect() }
        }
        quick_xml::Error::Syntax(SyntaxError::UnclosedDoctype) => CheckupError::Doctype,
        quick_xml::Error::Syntax(SyntaxError::InvalidBangMarkup) => malformed(position, e),
        // Every other syntax error is markup cut off by the end of the input.
        quick_xml::Error::Syntax(_) | quick_xml::Error::IllFormed(IllFormedError::MissingEndTag(_)) => {
            CheckupError::Truncated
        }
        quick_xml::Error::Encoding(_) => CheckupError::NotUtf8,
        other => malformed(position, other),
    }
}

fn set_once(slot: &mut Option<String>, value: String, field: Field) -> Result<(), CheckupError> {
    match slot {
        Some(existing) if *existing != value => Err(CheckupError::Conflicting { field }),
        Some(_) => Ok(()),
        None => {
            *slot = Some(value);
            Ok(())
        }
    }
}

impl<'l> Parser<'l> {
    fn new(limits: &'l Limits) -> Self {
        Self {
            limits,
            stack: Vec::with_capacity(32),
            path: String::new(),
            path_marks: Vec::with_capacity(32),
            root_seen: false,
            report_kind: None,
            insurer: None,
            symbol: None,
            number: None,
            branch: None,
            birth: None,
            gender: None,
            service_date: None,
            facility_number: None,
            facility_name: None,
            capture: None,
            open: Vec::new(),
            observations: 0,
            first_observation_date: None,
            items: Vec::new(),
        }
    }

    fn read_attrs(&self, reader: &NsReader<&[u8]>, e: &BytesStart<'_>) -> Result<Attrs, CheckupError> {
        let mut attrs = Attrs::default();
        for (i, attr) in e.attributes().enumerate() {
            if i >= self.limits.max_attributes_per_element {
                return Err(CheckupError::TooManyAttributes { limit: self.limits.max_attributes_per_element });
            }
            let attr = attr.map_err(|e| malformed(reader.buffer_position(), e))?;
            let (ns, local) = reader.resolver().resolve_attribute(attr.key);
            let slot = match (ns, local.as_ref()) {
                (ResolveResult::Bound(Namespace(n)), b"type") if n == XSI_NS => &mut attrs.xsi_type,
                (ResolveResult::Unbound, name) => match name {
                    b"root" => &mut attrs.root,
                    b"extension" => &mut attrs.extension,
                    b"code" => &mut attrs.code,
                    b"codeSystem" => &mut attrs.code_system,
                    b"displayName" => &mut attrs.display_name,
                    b"value" => &mut attrs.value,
                    b"unit" => &mut attrs.unit,
                    b"nullFlavor" => &mut attrs.null_flavor,
                    _ => {
                        // Still decode it, so an undefined entity anywhere is refused.
                        attr.normalized_value(XmlVersion::Implicit1_0)
                            .map_err(|e| map_xml_error(e, reader.buffer_position()))?;
                        continue;
                    }
                },
                _ => {
                    attr.normalized_value(XmlVersion::Implicit1_0)
                        .map_err(|e| map_xml_error(e, reader.buffer_position()))?;
                    continue;
                }
            };
            let value = attr
                .normalized_value(XmlVersion::Implicit1_0)
                .map_err(|e| map_xml_error(e, reader.buffer_position()))?;
            *slot = Some(value.trim().to_string());
        }
        Ok(attrs)
    }

    fn start(
        &mut self,
        reader: &NsReader<&[u8]>,
        hl7: bool,
        e: &BytesStart<'_>,
        empty: bool,
    ) -> Result<(), CheckupError> {
        if self.stack.len() + 1 > self.limits.max_depth {
            return Err(CheckupError::TooDeep { limit: self.limits.max_depth });
        }
        let el = if hl7 { classify(e.local_name().as_ref()) } else { El::Other };
        if self.stack.is_empty() {
            if self.root_seen {
                return Err(malformed(reader.buffer_position(), "a second root element"));
            }
            if el != El::ClinicalDocument {
                let found = String::from_utf8_lossy(e.name().as_ref()).chars().take(64).collect();
                return Err(CheckupError::NotClinicalDocument { found });
            }
            self.root_seen = true;
        }
        let attrs = self.read_attrs(reader, e)?;
        // The path includes this element while it is dispatched (an observation records it).
        self.path_marks.push(self.path.len());
        if !self.path.is_empty() {
            self.path.push('/');
        }
        self.path.extend(String::from_utf8_lossy(e.local_name().as_ref()).chars().take(MAX_PATH_NAME_CHARS));
        self.dispatch(el, attrs, empty)?;
        if empty {
            if el == El::Observation && self.open.last().is_some_and(|o| o.depth == self.stack.len()) {
                self.close_observation()?;
            }
            self.pop_path();
        } else {
            self.stack.push(el);
        }
        Ok(())
    }

    fn pop_path(&mut self) {
        if let Some(mark) = self.path_marks.pop() {
            self.path.truncate(mark);
        }
    }

    fn dispatch(&mut self, el: El, attrs: Attrs, empty: bool) -> Result<(), CheckupError> {
        use El::*;
        let path = self.stack.as_slice();
        match (path, el) {
            ([ClinicalDocument], Code) => self.report_kind = Some(attrs),
            ([ClinicalDocument, RecordTarget, PatientRole], Id) => {
                let Some(extension) = attrs.extension.filter(|v| !v.is_empty()) else {
                    return Ok(());
                };
                let (slot, field) = match attrs.root.as_deref() {
                    Some(OID_INSURER_NUMBER) => (&mut self.insurer, Field::InsurerNumber),
                    Some(OID_CARD_SYMBOL) => (&mut self.symbol, Field::Symbol),
                    Some(OID_CARD_NUMBER) => (&mut self.number, Field::Number),
                    Some(OID_CARD_BRANCH) => (&mut self.branch, Field::Branch),
                    _ => return Ok(()),
                };
                set_once(slot, extension, field)?;
            }
            ([ClinicalDocument, RecordTarget, PatientRole, Patient], BirthTime) => {
                if let Some(value) = attrs.value {
                    set_once(&mut self.birth, value, Field::BirthDate)?;
                }
            }
            ([ClinicalDocument, RecordTarget, PatientRole, Patient], AdministrativeGenderCode) => {
                self.gender = Some(attrs);
            }
            ([ClinicalDocument, DocumentationOf, ServiceEvent], EffectiveTime)
            | ([ClinicalDocument, DocumentationOf, ServiceEvent, EffectiveTime], Low) => {
                if let Some(value) = attrs.value {
                    set_once(&mut self.service_date, value, Field::ExaminationDate)?;
                }
            }
            ([ClinicalDocument, Author, AssignedAuthor, RepresentedOrganization], Id)
                if attrs.root.as_deref() == Some(OID_FACILITY) =>
            {
                if let Some(extension) = attrs.extension.filter(|e| !e.is_empty()) {
                    self.facility_number.get_or_insert(extension);
                }
            }
            ([ClinicalDocument, Author, AssignedAuthor, RepresentedOrganization], Name) if !empty => {
                self.capture =
                    Some(Capture { target: Target::FacilityName, depth: self.stack.len() + 1, text: String::new() });
            }
            (_, Observation) if path.contains(&StructuredBody) => {
                self.observations += 1;
                if self.observations > self.limits.max_observations {
                    return Err(CheckupError::TooManyObservations { limit: self.limits.max_observations });
                }
                self.open.push(self::Observation {
                    depth: self.stack.len(),
                    number: self.observations,
                    path: self.path.clone(),
                    ..Default::default()
                });
            }
            (_, Code | Value | EffectiveTime | InterpretationCode) => {
                let depth = self.stack.len();
                let Some(obs) = self.open.last_mut().filter(|o| o.depth + 1 == depth) else {
                    return Ok(());
                };
                match el {
                    Code => {
                        if obs.code.is_none() {
                            obs.code = Some(attrs);
                        }
                    }
                    Value => {
                        if obs.value.is_none() {
                            obs.value = Some((attrs, String::new()));
                            if !empty {
                                self.capture =
                                    Some(Capture { target: Target::ValueText, depth: depth + 1, text: String::new() });
                            }
                        }
                    }
                    EffectiveTime => obs.effective = obs.effective.take().or(attrs.value),
                    _ => obs.interpretation = obs.interpretation.take().or(attrs.code),
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn end(&mut self) -> Result<(), CheckupError> {
        // quick-xml checks that end tags match, so the stack is never empty here.
        if let Some(capture) = self.capture.take_if(|c| c.depth == self.stack.len()) {
            let text = capture.text.trim().to_string();
            match capture.target {
                Target::FacilityName => {
                    if !text.is_empty() {
                        self.facility_name.get_or_insert(text);
                    }
                }
                Target::ValueText => {
                    if let Some((_, slot)) = self.open.last_mut().and_then(|o| o.value.as_mut()) {
                        *slot = text;
                    }
                }
            }
        }
        let el = self.stack.pop();
        if el == Some(El::Observation) && self.open.last().is_some_and(|o| o.depth == self.stack.len()) {
            self.close_observation()?;
        }
        self.pop_path();
        Ok(())
    }

    fn text(&mut self, text: &str, position: u64) -> Result<(), CheckupError> {
        if self.stack.is_empty() {
            if !text.trim().is_empty() {
                return Err(malformed(position, "text outside the root element"));
            }
            return Ok(());
        }
        if let Some(capture) = self.capture.as_mut().filter(|c| c.depth == self.stack.len()) {
            capture.text.push_str(text);
        }
        Ok(())
    }

    fn reference(&mut self, r: &BytesRef<'_>, position: u64) -> Result<(), CheckupError> {
        let resolved = if r.is_char_ref() {
            r.resolve_char_ref().map_err(|e| malformed(position, e))?
        } else {
            let name = r.decode().map_err(|_| CheckupError::NotUtf8)?;
            match name.as_ref() {
                "lt" => Some('<'),
                "gt" => Some('>'),
                "amp" => Some('&'),
                "apos" => Some('\''),
                "quot" => Some('"'),
                other => return Err(CheckupError::UndefinedEntity { name: other.chars().take(64).collect() }),
            }
        };
        let Some(c) = resolved else {
            return Err(malformed(position, "invalid character reference"));
        };
        if self.stack.is_empty() {
            return Err(malformed(position, "reference outside the root element"));
        }
        if let Some(capture) = self.capture.as_mut().filter(|c| c.depth == self.stack.len()) {
            capture.text.push(c);
        }
        Ok(())
    }
}

impl Parser<'_> {
    fn close_observation(&mut self) -> Result<(), CheckupError> {
        let Some(obs) = self.open.pop() else {
            return Ok(());
        };
        let code_error =
            |problem| CheckupError::ObservationCode { observation: obs.number, path: obs.path.clone(), problem };
        let Some(mut code_attrs) = obs.code else {
            return Err(code_error(CodeProblem::NoCodeElement));
        };
        let Some(code) = code_attrs.code.take().filter(|c| !c.is_empty()) else {
            return Err(code_error(match code_attrs.null_flavor.take().filter(|n| !n.is_empty()) {
                Some(flavor) => CodeProblem::NullFlavor(flavor.chars().take(16).collect()),
                None => CodeProblem::NoCodeAttribute,
            }));
        };
        if code.chars().count() > MAX_CODE_CHARS || code.chars().any(char::is_control) {
            return Err(CheckupError::Invalid(Field::ObservationCode));
        }
        let code_system = code_attrs.code_system.take().filter(|s| !s.is_empty());
        let known = match code_system.as_deref() {
            Some(JLAC10_OID) => jlac10::lookup(&code),
            Some(_) => None,
            // Written without a code system: read as JLAC10 only when it has that shape.
            None => match jlac10::lookup(&code) {
                Some(known) => Some(known),
                None if jlac10::is_jlac10_shaped(&code) => None,
                None => return Err(code_error(CodeProblem::UndeclaredNotJlac10 { code })),
            },
        };
        if self.first_observation_date.is_none() {
            self.first_observation_date = obs.effective;
        }
        let value = build_value(&code, obs.value)?;
        let name = match known {
            Some(k) => k.name_ja.to_string(),
            None => code_attrs.display_name.clone().filter(|d| !d.is_empty()).unwrap_or_else(|| code.clone()),
        };
        self.items.push(Pending {
            item: Item {
                code,
                code_system,
                key: known.map(|k| k.key),
                name,
                value,
                interpretation: obs.interpretation.filter(|i| !i.is_empty()),
                reference: None,
            },
            spec: known.and_then(|k| k.reference),
            canonical_unit: known.and_then(|k| k.unit),
        });
        Ok(())
    }

    fn finish(self) -> Result<CheckupDocument, CheckupError> {
        if !self.root_seen {
            return Err(CheckupError::Empty);
        }
        if !self.stack.is_empty() {
            return Err(CheckupError::Truncated);
        }
        if let Some(kind) = &self.report_kind {
            if kind.code_system.as_deref() == Some(OID_REPORT_KIND) {
                let code = kind.code.clone().unwrap_or_default();
                if code.starts_with('2') {
                    return Err(CheckupError::NotACheckup { code: code.chars().take(8).collect() });
                }
            }
        }
        let insurer_number = self.insurer.ok_or(CheckupError::Missing(Field::InsurerNumber))?;
        if !is_digits(&insurer_number, 8) {
            return Err(CheckupError::Invalid(Field::InsurerNumber));
        }
        let number = self.number.ok_or(CheckupError::Missing(Field::Number))?;
        check_id(&number, Field::Number)?;
        let symbol = self.symbol.filter(|s| !s.is_empty());
        if let Some(symbol) = &symbol {
            check_id(symbol, Field::Symbol)?;
        }
        let branch = self.branch.filter(|s| !s.is_empty());
        if let Some(branch) = &branch {
            if !is_digits(branch, 8) {
                return Err(CheckupError::Invalid(Field::Branch));
            }
        }
        let birth = self.birth.ok_or(CheckupError::Missing(Field::BirthDate))?;
        let birth_date = parse_date(&birth).ok_or(CheckupError::Invalid(Field::BirthDate))?;
        let gender = match self.gender {
            None => None,
            Some(g) if g.null_flavor.is_some() && g.code.is_none() => None,
            Some(g) => match g.code.as_deref() {
                Some("1" | "M") => Some(Gender::Male),
                Some("2" | "F") => Some(Gender::Female),
                None | Some("") => None,
                Some(_) => return Err(CheckupError::Invalid(Field::Gender)),
            },
        };
        let examined =
            self.service_date.or(self.first_observation_date).ok_or(CheckupError::Missing(Field::ExaminationDate))?;
        let examined_on = parse_date(&examined).ok_or(CheckupError::Invalid(Field::ExaminationDate))?;
        let facility = (self.facility_number.is_some() || self.facility_name.is_some())
            .then_some(Facility { number: self.facility_number, name: self.facility_name });
        let items = self
            .items
            .into_iter()
            .map(|Pending { mut item, spec, canonical_unit }| {
                item.reference = spec.and_then(|spec| {
                    let comparable = match (&spec, &item.value) {
                        (ReferenceSpec::Ordinal { .. }, Value::Coded { .. }) => true,
                        (ReferenceSpec::Ordinal { .. }, _) => false,
                        (_, Value::Quantity { unit, .. }) => match (canonical_unit, unit) {
                            (Some(canonical), Some(unit)) => jlac10::same_unit(canonical, unit),
                            _ => true,
                        },
                        _ => false,
                    };
                    comparable.then(|| spec.resolve(gender)).flatten()
                });
                item
            })
            .collect();
        Ok(CheckupDocument {
            examinee: Examinee { insurer_number, symbol, number, branch, birth_date, gender },
            examined_on,
            facility,
            items,
        })
    }
}

/// ASCII or full-width digits only, 1 to `max` of them.
fn is_digits(s: &str, max: usize) -> bool {
    let n = s.chars().count();
    (1..=max).contains(&n) && s.chars().all(|c| c.is_ascii_digit() || ('０'..='９').contains(&c))
}

fn check_id(s: &str, field: Field) -> Result<(), CheckupError> {
    if s.chars().count() > MAX_ID_CHARS || s.chars().any(char::is_control) {
        return Err(CheckupError::Invalid(field));
    }
    Ok(())
}

/// `YYYYMMDD`, optionally followed by a time (`YYYYMMDDhhmmss+0900`).
fn parse_date(s: &str) -> Option<Date> {
    let s = s.trim();
    let head = s.get(..8)?;
    if !head.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let rest = &s[8..];
    if !rest.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.')) {
        return None;
    }
    let year: i32 = head[..4].parse().ok()?;
    let month: u8 = head[4..6].parse().ok()?;
    let day: u8 = head[6..8].parse().ok()?;
    if year < 1800 {
        return None;
    }
    Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()
}

/// A decimal as HL7 `REAL`/`PQ` writes it: sign, digits, optional fraction and exponent.
fn is_decimal(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let mut digits = i - int_start;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let frac_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        digits += i - frac_start;
    }
    if digits == 0 {
        return false;
    }
    if i < b.len() && matches!(b[i], b'e' | b'E') {
        i += 1;
        if i < b.len() && matches!(b[i], b'+' | b'-') {
            i += 1;
        }
        let exp_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == exp_start || i - exp_start > 3 {
            return false;
        }
    }
    i == b.len() && b.len() <= 32
}

fn build_value(code: &str, value: Option<(Attrs, String)>) -> Result<Value, CheckupError> {
    let Some((attrs, text)) = value else {
        return Ok(Value::Missing { null_flavor: None });
    };
    let non_empty = |v: Option<String>| v.filter(|v| !v.is_empty());
    let kind = attrs.xsi_type.as_deref().map(|t| t.rsplit(':').next().unwrap_or(t).to_ascii_uppercase());
    let quantity = |raw: String, unit: Option<String>| -> Result<Value, CheckupError> {
        let number: f64 = raw
            .parse()
            .ok()
            .filter(|n: &f64| n.is_finite())
            .ok_or(CheckupError::Observation { code: code.to_string(), problem: "quantity is not a decimal number" })?;
        if !is_decimal(&raw) {
            return Err(CheckupError::Observation {
                code: code.to_string(),
                problem: "quantity is not a decimal number",
            });
        }
        Ok(Value::Quantity { value: raw, number, unit: non_empty(unit) })
    };
    let coded = |attrs: Attrs| -> Value {
        let display = non_empty(attrs.display_name).or_else(|| {
            (attrs.code_system.as_deref() == Some(QUALITATIVE_OID))
                .then(|| attrs.code.as_deref().and_then(jlac10::qualitative_display))
                .flatten()
                .map(str::to_string)
        });
        Value::Coded { code: attrs.code.unwrap_or_default(), code_system: non_empty(attrs.code_system), display }
    };
    let text = text.trim().to_string();
    Ok(match kind.as_deref() {
        _ if attrs.null_flavor.is_some() && attrs.value.is_none() && attrs.code.is_none() && text.is_empty() => {
            Value::Missing { null_flavor: non_empty(attrs.null_flavor) }
        }
        Some("PQ" | "REAL" | "INT") => match non_empty(attrs.value) {
            Some(raw) => quantity(raw, attrs.unit)?,
            None => Value::Missing { null_flavor: non_empty(attrs.null_flavor) },
        },
        Some("CD" | "CO" | "CE" | "CV" | "CS") => {
            if attrs.code.as_deref().is_some_and(|c| !c.is_empty()) {
                coded(attrs)
            } else {
                Value::Missing { null_flavor: non_empty(attrs.null_flavor) }
            }
        }
        Some(_) => match (text.is_empty(), non_empty(attrs.value)) {
            (false, _) => Value::Text { text },
            (true, Some(v)) => Value::Text { text: v },
            (true, None) => Value::Missing { null_flavor: non_empty(attrs.null_flavor) },
        },
        // No xsi:type (schema-invalid, seen from hand-made files): go by what is there.
        None => {
            if let Some(raw) = attrs.value.clone().filter(|v| is_decimal(v)) {
                quantity(raw, attrs.unit)?
            } else if attrs.code.as_deref().is_some_and(|c| !c.is_empty()) {
                coded(attrs)
            } else if !text.is_empty() {
                Value::Text { text }
            } else if let Some(v) = non_empty(attrs.value) {
                Value::Text { text: v }
            } else {
                Value::Missing { null_flavor: non_empty(attrs.null_flavor) }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(parse_date("19900401"), Some(time::macros::date!(1990 - 04 - 01)));
        assert_eq!(parse_date("20240615093000+0900"), Some(time::macros::date!(2024 - 06 - 15)));
        assert_eq!(parse_date("19900231"), None);
        assert_eq!(parse_date("1990-04-01"), None);
        assert_eq!(parse_date("1990040"), None);
        assert_eq!(parse_date("１９９００４０１"), None);
        assert_eq!(parse_date("19900401x"), None);
    }

    #[test]
    fn decimals() {
        for ok in ["1", "170.5", "-3", "+0.25", ".5", "5.", "1.5E2"] {
            assert!(is_decimal(ok), "{ok}");
        }
        for bad in ["", ".", "-", "1,5", "1.2.3", "NaN", "inf", "1e", "1e99999", "１７０", " 1"] {
            assert!(!is_decimal(bad), "{bad}");
        }
    }

    #[test]
    fn digits() {
        assert!(is_digits("06132013", 8));
        assert!(is_digits("０６１３２０１３", 8));
        assert!(!is_digits("061320131", 8));
        assert!(!is_digits("", 8));
        assert!(!is_digits("12-34", 8));
    }
}
