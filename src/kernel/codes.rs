//! Validated code types used throughout the domain: region codes
//! (统计用区划代码), grid and building codes, bounded text, mainland mobile
//! phone numbers and citizen ID numbers (GB 11643).
//!
//! Every type here has private fields and can only be built by parsing (or by
//! a checked constructor), so a value that exists is valid. They all convert
//! to and from strings: `Display`/`FromStr`, and serde serializes them as
//! plain JSON strings and runs the same validation when deserializing.
//!
//! The module is pure: no I/O, no database. The only outside input is the
//! clock, read by [`IdNumber::parse`] to reject birth dates in the future;
//! [`IdNumber::parse_on`] takes the date explicitly for tests and imports.

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, FixedOffset, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Everything that can be wrong with a code or a piece of validated text.
///
/// [`CodeError::code`] gives a stable machine code (for the message
/// catalogue and API clients); `Display` gives an English description for
/// logs. Errors about ID numbers and phone numbers never echo the input,
/// because it is personal data.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CodeError {
    #[error("unknown region level {0:?} (expected province, city, district, subdistrict or community)")]
    RegionLevelUnknown(String),
    #[error("a region code may contain only the digits 0-9")]
    RegionCodeDigits,
    #[error("a region code has 2, 4, 6, 9 or 12 digits, not {len}")]
    RegionCodeLength { len: usize },
    #[error("a region code cannot be all zeros")]
    RegionCodeZero,
    #[error("{province:02} is not a province-level code of GB/T 2260")]
    RegionCodeProvince { province: u16 },
    #[error("region code {code} has a zero segment above a non-zero one")]
    RegionCodeInconsistent { code: String },
    #[error("a {child} code cannot be a direct child of a {parent} code")]
    RegionCodeLevelMismatch { child: RegionLevel, parent: RegionLevel },
    #[error("region code {child} does not lie under {parent}")]
    RegionCodeParentMismatch { child: String, parent: String },
    #[error("a grid code may contain only the digits 0-9")]
    GridCodeDigits,
    #[error("a grid code has 15 digits, not {len}")]
    GridCodeLength { len: usize },
    #[error("a grid must belong to a community or village, not to a {level}")]
    GridCodeNotCommunity { level: RegionLevel },
    #[error("a grid sequence number is 001-999, not {seq}")]
    GridCodeSeqRange { seq: u16 },
    #[error("a building code may contain only the digits 0-9")]
    BuildingCodeDigits,
    #[error("a building code has 20 digits, not {len}")]
    BuildingCodeLength { len: usize },
    #[error("a building number is 00001-99999, not {number}")]
    BuildingCodeNumberRange { number: u32 },
    #[error("the text is empty")]
    TextEmpty,
    #[error("the text has {len} characters, more than the {max} allowed")]
    TextTooLong { max: usize, len: usize },
    #[error("the text contains a control character")]
    TextControlChar,
    #[error("not a mainland China mobile number (11 digits starting with 13-19)")]
    PhoneInvalid,
    #[error("an ID number has 18 (or legacy 15) characters, not {len}")]
    IdNumberLength { len: usize },
    #[error("an ID number consists of digits, with only the last character allowed to be X")]
    IdNumberFormat,
    #[error("the ID number's check character does not match")]
    IdNumberChecksum,
    #[error("the ID number does not start with a known province code")]
    IdNumberRegion,
    #[error("the ID number does not contain a valid birth date between 1900-01-01 and today")]
    IdNumberBirthDate,
}

impl CodeError {
    /// Every machine code that [`CodeError::code`] can return.
    pub const ALL_CODES: &'static [&'static str] = &[
        "region_level.unknown",
        "region_code.digits",
        "region_code.length",
        "region_code.zero",
        "region_code.province",
        "region_code.inconsistent",
        "region_code.level_mismatch",
        "region_code.parent_mismatch",
        "grid_code.digits",
        "grid_code.length",
        "grid_code.not_community",
        "grid_code.seq_range",
        "building_code.digits",
        "building_code.length",
        "building_code.number_range",
        "text.empty",
        "text.too_long",
        "text.control_char",
        "phone.invalid",
        "id_number.length",
        "id_number.format",
        "id_number.checksum",
        "id_number.region",
        "id_number.birth_date",
    ];

    /// A stable machine-readable code, e.g. `"id_number.checksum"`.
    pub fn code(&self) -> &'static str {
        match self {
            CodeError::RegionLevelUnknown(_) => "region_level.unknown",
            CodeError::RegionCodeDigits => "region_code.digits",
            CodeError::RegionCodeLength { .. } => "region_code.length",
            CodeError::RegionCodeZero => "region_code.zero",
            CodeError::RegionCodeProvince { .. } => "region_code.province",
            CodeError::RegionCodeInconsistent { .. } => "region_code.inconsistent",
            CodeError::RegionCodeLevelMismatch { .. } => "region_code.level_mismatch",
            CodeError::RegionCodeParentMismatch { .. } => "region_code.parent_mismatch",
            CodeError::GridCodeDigits => "grid_code.digits",
            CodeError::GridCodeLength { .. } => "grid_code.length",
            CodeError::GridCodeNotCommunity { .. } => "grid_code.not_community",
            CodeError::GridCodeSeqRange { .. } => "grid_code.seq_range",
            CodeError::BuildingCodeDigits => "building_code.digits",
            CodeError::BuildingCodeLength { .. } => "building_code.length",
            CodeError::BuildingCodeNumberRange { .. } => "building_code.number_range",
            CodeError::TextEmpty => "text.empty",
            CodeError::TextTooLong { .. } => "text.too_long",
            CodeError::TextControlChar => "text.control_char",
            CodeError::PhoneInvalid => "phone.invalid",
            CodeError::IdNumberLength { .. } => "id_number.length",
            CodeError::IdNumberFormat => "id_number.format",
            CodeError::IdNumberChecksum => "id_number.checksum",
            CodeError::IdNumberRegion => "id_number.region",
            CodeError::IdNumberBirthDate => "id_number.birth_date",
        }
    }
}

/// Implements the string conversions shared by every code type:
/// `Display`, `FromStr`, `TryFrom<String>` / `TryFrom<&str>` (used by serde's
/// `try_from`), `From<T> for String` (serde's `into`) and `AsRef<str>`.
/// The type must have `fn parse(&str) -> Result<Self, CodeError>` and
/// `fn as_str(&self) -> &str`.
macro_rules! string_conversions {
    ($ty:ident $(<const $n:ident: usize>)?) => {
        impl$(<const $n: usize>)? fmt::Display for $ty$(<$n>)? {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl$(<const $n: usize>)? FromStr for $ty$(<$n>)? {
            type Err = CodeError;
            fn from_str(s: &str) -> Result<Self, CodeError> {
                Self::parse(s)
            }
        }

        impl$(<const $n: usize>)? TryFrom<&str> for $ty$(<$n>)? {
            type Error = CodeError;
            fn try_from(s: &str) -> Result<Self, CodeError> {
                Self::parse(s)
            }
        }

        impl$(<const $n: usize>)? TryFrom<String> for $ty$(<$n>)? {
            type Error = CodeError;
            fn try_from(s: String) -> Result<Self, CodeError> {
                Self::parse(&s)
            }
        }

        impl$(<const $n: usize>)? From<$ty$(<$n>)?> for String {
            fn from(value: $ty$(<$n>)?) -> String {
                value.as_str().to_owned()
            }
        }

        impl$(<const $n: usize>)? AsRef<str> for $ty$(<$n>)? {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }
    };
}

/// True when `s` is non-empty and made only of ASCII digits.
fn all_ascii_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// The numeric value of a run of ASCII digits (at most 5 of them here).
fn digits_value(digits: &[u8]) -> u32 {
    digits.iter().fold(0, |acc, d| acc * 10 + u32::from(d - b'0'))
}

/// Copies validated ASCII digits into a fixed array; the caller has checked
/// both the length and the digits.
fn to_array<const N: usize>(s: &str) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(s.as_bytes());
    out
}

/// Views an array that holds only ASCII digits as `&str`.
fn ascii_str(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).expect("code types hold only ASCII digits")
}

// ---------------------------------------------------------------------------
// Region levels and region codes
// ---------------------------------------------------------------------------

/// The five levels of the 统计用区划代码 hierarchy.
///
/// Ordered from the top: `Province < City < District < Subdistrict < Community`.
/// Serialized as the lower-case names `"province"`, `"city"`, `"district"`,
/// `"subdistrict"`, `"community"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum RegionLevel {
    /// 省级 (省、自治区、直辖市), segment `pp`.
    Province,
    /// 地级 (地级市、地区、自治州、盟; 直辖市的市辖区/县 grouping), segment `cc`.
    City,
    /// 县级 (市辖区、县、县级市、旗), segment `dd`.
    District,
    /// 乡级 (街道、镇、乡), segment `ttt`.
    Subdistrict,
    /// 村级 (居委会、村委会), segment `vvv`.
    Community,
}

impl RegionLevel {
    /// All levels, from the top down.
    pub const ALL: [RegionLevel; 5] = [
        RegionLevel::Province,
        RegionLevel::City,
        RegionLevel::District,
        RegionLevel::Subdistrict,
        RegionLevel::Community,
    ];

    /// The level directly above this one, `None` for a province.
    pub fn parent(self) -> Option<RegionLevel> {
        match self {
            RegionLevel::Province => None,
            RegionLevel::City => Some(RegionLevel::Province),
            RegionLevel::District => Some(RegionLevel::City),
            RegionLevel::Subdistrict => Some(RegionLevel::District),
            RegionLevel::Community => Some(RegionLevel::Subdistrict),
        }
    }

    /// The level directly below this one, `None` for a community.
    pub fn child(self) -> Option<RegionLevel> {
        match self {
            RegionLevel::Province => Some(RegionLevel::City),
            RegionLevel::City => Some(RegionLevel::District),
            RegionLevel::District => Some(RegionLevel::Subdistrict),
            RegionLevel::Subdistrict => Some(RegionLevel::Community),
            RegionLevel::Community => None,
        }
    }

    /// How many leading digits of a 12-digit code identify a region of this
    /// level: 2, 4, 6, 9 or 12.
    pub fn digits(self) -> usize {
        match self {
            RegionLevel::Province => 2,
            RegionLevel::City => 4,
            RegionLevel::District => 6,
            RegionLevel::Subdistrict => 9,
            RegionLevel::Community => 12,
        }
    }

    /// The lower-case English name used by `Display` and serde.
    pub fn as_str(self) -> &'static str {
        match self {
            RegionLevel::Province => "province",
            RegionLevel::City => "city",
            RegionLevel::District => "district",
            RegionLevel::Subdistrict => "subdistrict",
            RegionLevel::Community => "community",
        }
    }

    /// Parses the lower-case name (surrounding whitespace and case ignored).
    pub fn parse(s: &str) -> Result<RegionLevel, CodeError> {
        let wanted = s.trim();
        RegionLevel::ALL
            .into_iter()
            .find(|level| level.as_str().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| CodeError::RegionLevelUnknown(s.to_owned()))
    }
}

impl fmt::Display for RegionLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RegionLevel {
    type Err = CodeError;
    fn from_str(s: &str) -> Result<Self, CodeError> {
        RegionLevel::parse(s)
    }
}

impl TryFrom<String> for RegionLevel {
    type Error = CodeError;
    fn try_from(s: String) -> Result<Self, CodeError> {
        RegionLevel::parse(&s)
    }
}

impl From<RegionLevel> for String {
    fn from(level: RegionLevel) -> String {
        level.as_str().to_owned()
    }
}

/// The provincial-level codes of GB/T 2260 (including 71 台湾, 81 香港,
/// 82 澳门). Sorted, for `binary_search`.
const PROVINCE_CODES: [u16; 34] = [
    11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52, 53, 54, 61, 62, 63,
    64, 65, 71, 81, 82,
];

/// Prefecture-level cities that have no county level (不设区的地级市):
/// 东莞 4419, 中山 4420, 儋州 4604. In the 统计用区划代码 their townships
/// hang directly under the city with a `00` county segment, e.g.
/// 441900003000 东城街道, so for them (and only them) `cc 00 ttt` is a
/// consistent code. The parent of such a township is the city itself.
const CITIES_WITHOUT_COUNTIES: [[u8; 4]; 3] = [*b"4419", *b"4420", *b"4604"];

/// The byte ranges of the five segments `pp cc dd ttt vvv`.
const SEGMENTS: [(usize, usize); 5] = [(0, 2), (2, 4), (4, 6), (6, 9), (9, 12)];

/// A 12-digit 统计用区划代码 (`pp cc dd ttt vvv`): 6 digits of GB/T 2260
/// (province, city, county), 3 for the township (乡镇/街道) and 3 for the
/// village or residents' committee (村/居委会).
///
/// A region's level is the lowest non-zero segment, and every segment above
/// it must be non-zero too (with the documented exception of cities without
/// counties, see [`RegionCode::parse`]). The short forms of 2, 4, 6 and 9
/// digits are accepted and padded with zeros.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RegionCode {
    digits: [u8; 12],
    level: RegionLevel,
}

impl RegionCode {
    /// Parses a region code in its full 12-digit form or a short 2/4/6/9-digit
    /// form (`"14"`, `"1401"`, `"140105"`, `"140105001"`), which is padded
    /// with zeros. Surrounding whitespace is ignored.
    ///
    /// Rejected: anything but ASCII digits, other lengths, all zeros, an
    /// unknown province, and a zero segment above a non-zero one (such as
    /// `140100001000`, whose county is `00` but township `001`). The one
    /// exception is the cities without counties, 东莞 (4419), 中山 (4420) and
    /// 儋州 (4604), whose townships really are coded `cc00ttt`.
    pub fn parse(s: &str) -> Result<RegionCode, CodeError> {
        let s = s.trim();
        if !all_ascii_digits(s) {
            return Err(CodeError::RegionCodeDigits);
        }
        if !matches!(s.len(), 2 | 4 | 6 | 9 | 12) {
            return Err(CodeError::RegionCodeLength { len: s.len() });
        }
        let mut digits = [b'0'; 12];
        digits[..s.len()].copy_from_slice(s.as_bytes());
        RegionCode::from_digits(digits)
    }

    /// Validates 12 ASCII digits and derives the level.
    fn from_digits(digits: [u8; 12]) -> Result<RegionCode, CodeError> {
        let segments = SEGMENTS.map(|(start, end)| digits_value(&digits[start..end]));
        let Some(lowest) = segments.iter().rposition(|&s| s != 0) else {
            return Err(CodeError::RegionCodeZero);
        };
        let province = segments[0] as u16;
        if PROVINCE_CODES.binary_search(&province).is_err() {
            // Also covers a zero province with later non-zero segments.
            return Err(CodeError::RegionCodeProvince { province });
        }
        let city_without_counties = CITIES_WITHOUT_COUNTIES.contains(&[digits[0], digits[1], digits[2], digits[3]]);
        for (index, &segment) in segments.iter().enumerate().take(lowest) {
            // Index 2 is the county segment.
            let allowed_gap = index == 2 && city_without_counties;
            if segment == 0 && !allowed_gap {
                return Err(CodeError::RegionCodeInconsistent { code: ascii_str(&digits).to_owned() });
            }
        }
        Ok(RegionCode { digits, level: RegionLevel::ALL[lowest] })
    }

    /// The full 12-digit form.
    pub fn as_str(&self) -> &str {
        ascii_str(&self.digits)
    }

    /// The natural short form: 2, 4, 6, 9 or 12 digits depending on the level
    /// (`"14"`, `"1401"`, `"140105"`, `"140105001"`, `"140105001001"`).
    pub fn short(&self) -> &str {
        &self.as_str()[..self.level.digits()]
    }

    /// The level, derived from the lowest non-zero segment.
    pub fn level(&self) -> RegionLevel {
        self.level
    }

    /// The region directly above this one, `None` for a province.
    ///
    /// For a township of a city without counties (e.g. 441900003000) this is
    /// the city (441900000000), one level further up than usual.
    pub fn parent_code(&self) -> Option<RegionCode> {
        let parent_level = self.level.parent()?;
        let mut digits = [b'0'; 12];
        let keep = parent_level.digits();
        digits[..keep].copy_from_slice(&self.digits[..keep]);
        // The truncated code keeps the upper segments of a valid code, so it
        // is valid too. For a 4419 township the kept county segment is 00 and
        // the result is the city code, as documented.
        Some(RegionCode::from_digits(digits).expect("a prefix of a valid region code is valid"))
    }

    /// The enclosing region at `level`, if this code lies strictly below that
    /// level and has a region there (a 东莞 township has no county).
    pub fn ancestor(&self, level: RegionLevel) -> Option<RegionCode> {
        if level >= self.level {
            return None;
        }
        let mut digits = [b'0'; 12];
        digits[..level.digits()].copy_from_slice(&self.digits[..level.digits()]);
        RegionCode::from_digits(digits).ok().filter(|code| code.level == level)
    }

    /// True when `self` is `other` or lies anywhere below it, e.g. for
    /// scoping data access by region.
    pub fn is_within(&self, other: &RegionCode) -> bool {
        other.level <= self.level && self.as_str().starts_with(other.short())
    }

    /// True when `parent` is exactly the region directly above `self`.
    pub fn is_direct_child_of(&self, parent: &RegionCode) -> bool {
        self.parent_code().as_ref() == Some(parent)
    }

    /// Checks that `self` may be stored as a direct child of `parent`: its
    /// level must be exactly one below `parent`'s (for townships of cities
    /// without counties: directly below the city) and its leading digits must
    /// be `parent`'s.
    pub fn validate_child(&self, parent: &RegionCode) -> Result<(), CodeError> {
        let Some(expected) = self.parent_code() else {
            return Err(CodeError::RegionCodeLevelMismatch { child: self.level, parent: parent.level });
        };
        if expected.level != parent.level {
            return Err(CodeError::RegionCodeLevelMismatch { child: self.level, parent: parent.level });
        }
        if expected != *parent {
            return Err(CodeError::RegionCodeParentMismatch {
                child: self.as_str().to_owned(),
                parent: parent.as_str().to_owned(),
            });
        }
        Ok(())
    }

    /// The township segment `ttt` (0 above the subdistrict level).
    pub fn township_segment(&self) -> u16 {
        digits_value(&self.digits[6..9]) as u16
    }

    /// The community segment `vvv` (0 above the community level).
    pub fn community_segment(&self) -> u16 {
        digits_value(&self.digits[9..12]) as u16
    }

    /// True for a village committee (村委会): a community code whose last
    /// segment is 200–399. Residents' committees (居委会) are 001–199.
    pub fn is_village(&self) -> bool {
        self.level == RegionLevel::Community && (200..=399).contains(&self.community_segment())
    }

    /// True when the township (of a subdistrict or community code) is a town
    /// or township (镇 1xx, 乡 2xx) rather than a street office (街道 0xx).
    /// Other ranges (4xx and up: 开发区, 农场 and the like) are neither.
    pub fn is_town(&self) -> bool {
        self.level >= RegionLevel::Subdistrict && (100..=299).contains(&self.township_segment())
    }
}

impl fmt::Debug for RegionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RegionCode({}, {})", self.as_str(), self.level)
    }
}

string_conversions!(RegionCode);

// ---------------------------------------------------------------------------
// Grid and building codes
// ---------------------------------------------------------------------------

/// A 15-digit grid code: the 12-digit code of the community or village the
/// grid belongs to, then a 3-digit sequence 001–999 (numbered west to east,
/// north to south within the community). A grid never hangs directly under a
/// township or county.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct GridCode {
    digits: [u8; 15],
}

impl GridCode {
    /// Builds the code of grid `seq` (1–999) in `community`.
    pub fn new(community: &RegionCode, seq: u16) -> Result<GridCode, CodeError> {
        if community.level() != RegionLevel::Community {
            return Err(CodeError::GridCodeNotCommunity { level: community.level() });
        }
        if !(1..=999).contains(&seq) {
            return Err(CodeError::GridCodeSeqRange { seq });
        }
        let mut digits = [0u8; 15];
        digits[..12].copy_from_slice(&community.digits);
        digits[12..].copy_from_slice(format!("{seq:03}").as_bytes());
        Ok(GridCode { digits })
    }

    /// Parses 15 digits (surrounding whitespace ignored).
    pub fn parse(s: &str) -> Result<GridCode, CodeError> {
        let s = s.trim();
        if !all_ascii_digits(s) {
            return Err(CodeError::GridCodeDigits);
        }
        if s.len() != 15 {
            return Err(CodeError::GridCodeLength { len: s.len() });
        }
        let community = RegionCode::from_digits(to_array(&s[..12]))?;
        GridCode::new(&community, digits_value(&s.as_bytes()[12..]) as u16)
    }

    /// The 15 digits.
    pub fn as_str(&self) -> &str {
        ascii_str(&self.digits)
    }

    /// The community (or village) the grid belongs to.
    pub fn community(&self) -> RegionCode {
        RegionCode::from_digits(to_array(&self.as_str()[..12])).expect("a grid code holds a valid community code")
    }

    /// The sequence number within the community, 1–999.
    pub fn seq(&self) -> u16 {
        digits_value(&self.digits[12..]) as u16
    }
}

impl fmt::Debug for GridCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GridCode({})", self.as_str())
    }
}

string_conversions!(GridCode);

/// A 20-digit building code: the 15-digit grid code, then a 5-digit building
/// number 00001–99999.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BuildingCode {
    digits: [u8; 20],
}

impl BuildingCode {
    /// Builds the code of building `number` (1–99999) in `grid`.
    pub fn new(grid: &GridCode, number: u32) -> Result<BuildingCode, CodeError> {
        if !(1..=99_999).contains(&number) {
            return Err(CodeError::BuildingCodeNumberRange { number });
        }
        let mut digits = [0u8; 20];
        digits[..15].copy_from_slice(&grid.digits);
        digits[15..].copy_from_slice(format!("{number:05}").as_bytes());
        Ok(BuildingCode { digits })
    }

    /// Parses 20 digits (surrounding whitespace ignored).
    pub fn parse(s: &str) -> Result<BuildingCode, CodeError> {
        let s = s.trim();
        if !all_ascii_digits(s) {
            return Err(CodeError::BuildingCodeDigits);
        }
        if s.len() != 20 {
            return Err(CodeError::BuildingCodeLength { len: s.len() });
        }
        let grid = GridCode::parse(&s[..15])?;
        BuildingCode::new(&grid, digits_value(&s.as_bytes()[15..]))
    }

    /// The 20 digits.
    pub fn as_str(&self) -> &str {
        ascii_str(&self.digits)
    }

    /// The grid the building belongs to.
    pub fn grid(&self) -> GridCode {
        GridCode { digits: to_array(&self.as_str()[..15]) }
    }

    /// The building number within the grid, 1–99999.
    pub fn number(&self) -> u32 {
        digits_value(&self.digits[15..])
    }
}

impl fmt::Debug for BuildingCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BuildingCode({})", self.as_str())
    }
}

string_conversions!(BuildingCode);

// ---------------------------------------------------------------------------
// Bounded text
// ---------------------------------------------------------------------------

/// A single-line text field: trimmed, non-empty, at most `MAX` characters
/// (Unicode scalar values, so 100 Chinese characters fit in a
/// `BoundedText<100>` although they take 300 bytes), with no control
/// characters (no tabs or line breaks either) and no bidirectional-override
/// characters (which can make a name display as something else).
///
/// Lengths follow GB/T 31000, which counts characters; see [`Name100`] and
/// [`PersonName`]. Multi-line text (事件简述 and the like) needs another type.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BoundedText<const MAX: usize>(String);

/// A name of at most 100 characters (网格名称, 事件名称 and other `text 100`
/// fields of GB/T 31000).
pub type Name100 = BoundedText<100>;

/// A person's name of at most 50 characters (网格长姓名, 网格员姓名 in
/// GB/T 31000 table 8).
pub type PersonName = BoundedText<50>;

/// Characters a single-line text may not contain: the C0/C1 controls and the
/// bidirectional embedding, override and isolate characters.
fn is_forbidden_text_char(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

impl<const MAX: usize> BoundedText<MAX> {
    /// The maximum number of characters.
    pub const MAX_CHARS: usize = MAX;

    /// Trims surrounding whitespace (including the full-width space U+3000)
    /// and validates what is left.
    pub fn parse(s: &str) -> Result<Self, CodeError> {
        let text = s.trim();
        if text.is_empty() {
            return Err(CodeError::TextEmpty);
        }
        if text.chars().any(is_forbidden_text_char) {
            return Err(CodeError::TextControlChar);
        }
        let len = text.chars().count();
        if len > MAX {
            return Err(CodeError::TextTooLong { max: MAX, len });
        }
        Ok(BoundedText(text.to_owned()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number of characters (not bytes).
    pub fn char_count(&self) -> usize {
        self.0.chars().count()
    }

    /// Gives back the inner `String`.
    pub fn into_inner(self) -> String {
        self.0
    }
}

string_conversions!(BoundedText<const MAX: usize>);

// ---------------------------------------------------------------------------
// Mobile phone numbers
// ---------------------------------------------------------------------------

/// A mainland China mobile number, normalized to 11 digits `1[3-9]xxxxxxxxx`.
///
/// `Debug` shows the masked form so that numbers do not end up in logs;
/// `Display` and serde give the full number, for storage.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MobilePhone {
    digits: [u8; 11],
}

impl MobilePhone {
    /// Accepts an optional `+86`, `0086` or `86` prefix and spaces or hyphens
    /// anywhere (`"+86 138-0013-8000"`), and normalizes to 11 digits.
    pub fn parse(s: &str) -> Result<MobilePhone, CodeError> {
        let cleaned: String = s.trim().chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        let national = if let Some(rest) = cleaned.strip_prefix("+86") {
            rest
        } else if let Some(rest) = cleaned.strip_prefix("0086") {
            rest
        } else if cleaned.len() == 13 && cleaned.starts_with("86") {
            // A bare 86 prefix is only unambiguous when 11 digits follow.
            &cleaned[2..]
        } else {
            &cleaned
        };
        let bytes = national.as_bytes();
        let valid =
            national.len() == 11 && all_ascii_digits(national) && bytes[0] == b'1' && (b'3'..=b'9').contains(&bytes[1]);
        if !valid {
            return Err(CodeError::PhoneInvalid);
        }
        Ok(MobilePhone { digits: to_array(national) })
    }

    /// The 11 digits.
    pub fn as_str(&self) -> &str {
        ascii_str(&self.digits)
    }

    /// The form shown in lists: first 3 and last 4 digits, `138****8000`.
    pub fn masked(&self) -> String {
        let s = self.as_str();
        format!("{}****{}", &s[..3], &s[7..])
    }
}

impl fmt::Debug for MobilePhone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MobilePhone({})", self.masked())
    }
}

string_conversions!(MobilePhone);

// ---------------------------------------------------------------------------
// Citizen ID numbers (GB 11643)
// ---------------------------------------------------------------------------

/// Weights of the first 17 characters in the GB 11643 check (2^(17-i) mod 11).
const ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];

/// The check character for each value of the weighted sum mod 11.
const ID_CHECK_CHARS: &[u8; 11] = b"10X98765432";

/// The earliest birth date accepted.
const ID_MIN_BIRTH: NaiveDate = match NaiveDate::from_ymd_opt(1900, 1, 1) {
    Some(date) => date,
    None => panic!("1900-01-01 is a valid date"),
};

/// The check character for the first 17 digits of an 18-character ID.
fn id_check_char(first17: &[u8]) -> u8 {
    let sum: u32 = first17.iter().zip(ID_WEIGHTS).map(|(d, w)| u32::from(d - b'0') * w).sum();
    ID_CHECK_CHARS[(sum % 11) as usize]
}

/// Today's date in China (UTC+8), which is what a birth date is compared
/// with: a child born just after midnight Beijing time is born "today" even
/// while it is still yesterday in UTC.
fn china_today() -> NaiveDate {
    let offset = FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset");
    Utc::now().with_timezone(&offset).date_naive()
}

/// A citizen ID number (居民身份证号码, GB 11643): 6-digit address code,
/// 8-digit birth date `YYYYMMDD`, 3-digit sequence (odd for men) and a check
/// character (0–9 or X).
///
/// Legacy 15-digit numbers (`YYMMDD` in the 1900s, no check character) are
/// converted to 18 characters. A lowercase `x` is normalized to `X`.
///
/// `Debug` shows the masked form so that ID numbers do not end up in logs;
/// `Display` and serde give the full number, for storage. Show
/// [`IdNumber::masked`] in the UI.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IdNumber {
    chars: [u8; 18],
}

impl IdNumber {
    /// Parses and validates an ID number, comparing the birth date with
    /// today's date in China.
    pub fn parse(s: &str) -> Result<IdNumber, CodeError> {
        IdNumber::parse_on(s, china_today())
    }

    /// Like [`IdNumber::parse`] but with an explicit "today", the latest
    /// birth date accepted.
    ///
    /// Checks, in this order: length (18 or 15), characters, check
    /// character, province of the address code, birth date. The check
    /// character comes before the rest so that a single mistyped digit is
    /// always reported as `id_number.checksum`.
    pub fn parse_on(s: &str, today: NaiveDate) -> Result<IdNumber, CodeError> {
        let s = s.trim();
        let len = s.chars().count();
        // From here on, a string of the right length must be ASCII, so byte
        // offsets are character offsets.
        if matches!(len, 15 | 18) && !s.is_ascii() {
            return Err(CodeError::IdNumberFormat);
        }
        let chars = match len {
            18 => {
                let bytes = s.as_bytes();
                if !all_ascii_digits(&s[..17]) {
                    return Err(CodeError::IdNumberFormat);
                }
                let last = bytes[17].to_ascii_uppercase();
                if !(last.is_ascii_digit() || last == b'X') {
                    return Err(CodeError::IdNumberFormat);
                }
                if id_check_char(&bytes[..17]) != last {
                    return Err(CodeError::IdNumberChecksum);
                }
                let mut chars: [u8; 18] = to_array(s);
                chars[17] = last;
                chars
            }
            15 => {
                if !all_ascii_digits(s) {
                    return Err(CodeError::IdNumberFormat);
                }
                // 6 address + YYMMDD + 3 sequence → 6 address + 19YYMMDD +
                // 3 sequence + check.
                let mut chars = [0u8; 18];
                chars[..6].copy_from_slice(&s.as_bytes()[..6]);
                chars[6..8].copy_from_slice(b"19");
                chars[8..17].copy_from_slice(&s.as_bytes()[6..]);
                chars[17] = id_check_char(&chars[..17]);
                chars
            }
            _ => return Err(CodeError::IdNumberLength { len }),
        };
        let id = IdNumber { chars };
        // 83 is not a region but prefixes the residence permits of Taiwan
        // residents (港澳台居民居住证, whose numbers follow GB 11643 with
        // 810000 / 820000 / 830000 as address code).
        let province = digits_value(&chars[..2]) as u16;
        if PROVINCE_CODES.binary_search(&province).is_err() && province != 83 {
            return Err(CodeError::IdNumberRegion);
        }
        match id.birth_date_checked() {
            Some(date) if (ID_MIN_BIRTH..=today).contains(&date) => Ok(id),
            _ => Err(CodeError::IdNumberBirthDate),
        }
    }

    /// Builds a valid ID number from its parts, computing the check
    /// character; useful for generated demo data. `address` is the 6-digit
    /// address code, `seq` is 0–999 (odd for men).
    pub fn from_parts(address: &str, birth_date: NaiveDate, seq: u16) -> Result<IdNumber, CodeError> {
        if address.len() != 6 || !all_ascii_digits(address) || seq > 999 {
            return Err(CodeError::IdNumberFormat);
        }
        let first17 = format!("{address}{}{seq:03}", birth_date.format("%Y%m%d"));
        let check = char::from(id_check_char(first17.as_bytes()));
        IdNumber::parse(&format!("{first17}{check}"))
    }

    fn birth_date_checked(&self) -> Option<NaiveDate> {
        let year = digits_value(&self.chars[6..10]) as i32;
        let month = digits_value(&self.chars[10..12]);
        let day = digits_value(&self.chars[12..14]);
        NaiveDate::from_ymd_opt(year, month, day)
    }

    /// The 18 characters (digits, the last may be `X`).
    pub fn as_str(&self) -> &str {
        ascii_str(&self.chars)
    }

    /// The birth date encoded in the number.
    pub fn birth_date(&self) -> NaiveDate {
        self.birth_date_checked().expect("an IdNumber holds a valid birth date")
    }

    /// Age in whole years on `date` (0 if `date` is before the birth date).
    pub fn age_on(&self, date: NaiveDate) -> u32 {
        let birth = self.birth_date();
        let mut age = date.year() - birth.year();
        if (date.month(), date.day()) < (birth.month(), birth.day()) {
            age -= 1;
        }
        u32::try_from(age).unwrap_or(0)
    }

    /// True when the sequence (the 17th character) is odd.
    pub fn is_male(&self) -> bool {
        (self.chars[16] - b'0') % 2 == 1
    }

    /// The 6-digit address code (GB/T 2260 code of the place of first
    /// registration; it may be a code that no longer exists).
    pub fn region_prefix(&self) -> &str {
        &self.as_str()[..6]
    }

    /// The form shown in the UI: first 6 and last 4 characters kept,
    /// `110105********0123`.
    pub fn masked(&self) -> String {
        let s = self.as_str();
        format!("{}********{}", &s[..6], &s[14..])
    }
}

impl fmt::Debug for IdNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdNumber({})", self.masked())
    }
}

string_conversions!(IdNumber);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn region(s: &str) -> RegionCode {
        RegionCode::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    /// A fixed "today" so that the tests do not depend on the clock.
    fn today() -> NaiveDate {
        date(2025, 6, 1)
    }

    /// Appends the correct check character to 17 digits.
    fn with_check(first17: &str) -> String {
        format!("{first17}{}", char::from(id_check_char(first17.as_bytes())))
    }

    // --- RegionLevel ------------------------------------------------------

    #[test]
    fn region_level_parent_and_child_chain() {
        assert_eq!(RegionLevel::Province.parent(), None);
        assert_eq!(RegionLevel::City.parent(), Some(RegionLevel::Province));
        assert_eq!(RegionLevel::District.parent(), Some(RegionLevel::City));
        assert_eq!(RegionLevel::Subdistrict.parent(), Some(RegionLevel::District));
        assert_eq!(RegionLevel::Community.parent(), Some(RegionLevel::Subdistrict));
        for level in RegionLevel::ALL {
            if let Some(child) = level.child() {
                assert_eq!(child.parent(), Some(level));
                assert!(child > level);
            }
        }
        assert_eq!(RegionLevel::Community.child(), None);
    }

    #[test]
    fn region_level_strings_and_serde() {
        for level in RegionLevel::ALL {
            assert_eq!(level.to_string().parse::<RegionLevel>(), Ok(level));
            let json = serde_json::to_string(&level).unwrap();
            assert_eq!(json, format!("\"{}\"", level.as_str()));
            assert_eq!(serde_json::from_str::<RegionLevel>(&json).unwrap(), level);
        }
        assert_eq!(" City ".parse::<RegionLevel>(), Ok(RegionLevel::City));
        let err = "county".parse::<RegionLevel>().unwrap_err();
        assert_eq!(err.code(), "region_level.unknown");
        assert!(serde_json::from_str::<RegionLevel>("\"county\"").is_err());
    }

    // --- RegionCode ---------------------------------------------------------

    #[test]
    fn region_code_levels_and_forms() {
        let cases = [
            ("14", RegionLevel::Province, "140000000000", "14"),
            ("1401", RegionLevel::City, "140100000000", "1401"),
            ("140105", RegionLevel::District, "140105000000", "140105"),
            ("140105001", RegionLevel::Subdistrict, "140105001000", "140105001"),
            ("140105001002", RegionLevel::Community, "140105001002", "140105001002"),
            // Short forms written with trailing zeros are fine.
            ("140000", RegionLevel::Province, "140000000000", "14"),
            ("140100000000", RegionLevel::City, "140100000000", "1401"),
            (" 320508019044 ", RegionLevel::Community, "320508019044", "320508019044"),
        ];
        for (input, level, full, short) in cases {
            let code = region(input);
            assert_eq!(code.level(), level, "{input}");
            assert_eq!(code.as_str(), full, "{input}");
            assert_eq!(code.short(), short, "{input}");
            assert_eq!(code.to_string(), full);
        }
    }

    #[test]
    fn region_code_rejects_bad_input() {
        let cases = [
            ("", "region_code.digits"),
            ("14a1", "region_code.digits"),
            ("１４", "region_code.digits"), // full-width digits
            ("+14", "region_code.digits"),
            ("1", "region_code.length"),
            ("140", "region_code.length"),
            ("1401051", "region_code.length"),
            ("1401050010021", "region_code.length"),
            ("00", "region_code.zero"),
            ("000000000000", "region_code.zero"),
            ("99", "region_code.province"),
            ("10", "region_code.province"),
            ("001001", "region_code.province"),
            ("140005", "region_code.inconsistent"),
            ("140100001000", "region_code.inconsistent"),
            ("140105000001", "region_code.inconsistent"),
            ("140000001001", "region_code.inconsistent"),
        ];
        for (input, code) in cases {
            let err = RegionCode::parse(input).unwrap_err();
            assert_eq!(err.code(), code, "{input:?}: {err}");
        }
    }

    #[test]
    fn region_code_cities_without_counties() {
        // 东莞 东城街道 and a community under it.
        let town = region("441900003000");
        assert_eq!(town.level(), RegionLevel::Subdistrict);
        assert_eq!(town.short(), "441900003");
        let city = region("4419");
        assert_eq!(town.parent_code(), Some(city));
        assert!(town.is_direct_child_of(&city));
        assert_eq!(town.validate_child(&city), Ok(()));
        assert_eq!(town.ancestor(RegionLevel::District), None);
        assert_eq!(town.ancestor(RegionLevel::City), Some(city));
        let community = region("441900003001");
        assert_eq!(community.parent_code(), Some(town));
        assert!(community.is_within(&city));
        // 中山 and 儋州 too, but nowhere else.
        assert_eq!(region("442000001000").level(), RegionLevel::Subdistrict);
        assert_eq!(region("460400100000").level(), RegionLevel::Subdistrict);
        for input in ["441800003000", "440100001000", "441900000001"] {
            assert_eq!(RegionCode::parse(input).unwrap_err().code(), "region_code.inconsistent", "{input}");
        }
    }

    #[test]
    fn region_code_parents_and_children() {
        let community = region("140105001002");
        let township = region("140105001");
        let district = region("140105");
        let city = region("1401");
        let province = region("14");
        assert_eq!(community.parent_code(), Some(township));
        assert_eq!(township.parent_code(), Some(district));
        assert_eq!(district.parent_code(), Some(city));
        assert_eq!(city.parent_code(), Some(province));
        assert_eq!(province.parent_code(), None);

        assert!(community.is_direct_child_of(&township));
        assert!(!community.is_direct_child_of(&district));
        assert!(!community.is_direct_child_of(&community));
        assert!(community.is_within(&community));
        assert!(community.is_within(&province));
        assert!(!province.is_within(&community));
        assert!(!region("140106").is_within(&district));
        assert_eq!(community.ancestor(RegionLevel::District), Some(district));
        assert_eq!(community.ancestor(RegionLevel::Community), None);
        assert_eq!(city.ancestor(RegionLevel::District), None);

        assert_eq!(community.validate_child(&township), Ok(()));
        assert_eq!(city.validate_child(&province), Ok(()));
        let err = community.validate_child(&district).unwrap_err();
        assert_eq!(err.code(), "region_code.level_mismatch");
        let err = district.validate_child(&township).unwrap_err();
        assert_eq!(err.code(), "region_code.level_mismatch");
        let err = province.validate_child(&province).unwrap_err();
        assert_eq!(err.code(), "region_code.level_mismatch");
        let err = community.validate_child(&region("140106001")).unwrap_err();
        assert_eq!(err.code(), "region_code.parent_mismatch");
        let err = region("3205").validate_child(&province).unwrap_err();
        assert_eq!(err.code(), "region_code.parent_mismatch");
        assert!(err.to_string().contains("320500000000"));
    }

    #[test]
    fn region_code_village_and_town_helpers() {
        assert!(region("140105101201").is_village());
        assert!(region("140105101399").is_village());
        assert!(!region("140105101199").is_village());
        assert!(!region("140105101001").is_village());
        assert!(!region("140105101400").is_village());
        assert!(!region("140105101").is_village());

        assert!(region("140105101").is_town()); // 镇
        assert!(region("140105201").is_town()); // 乡
        assert!(region("140105201001").is_town());
        assert!(!region("140105001").is_town()); // 街道
        assert!(!region("140105401").is_town()); // 开发区 and the like
        assert!(!region("140105").is_town());
        assert_eq!(region("140105201007").township_segment(), 201);
        assert_eq!(region("140105201007").community_segment(), 7);
    }

    #[test]
    fn region_code_serde_and_ordering() {
        let code = region("1401");
        let json = serde_json::to_string(&code).unwrap();
        assert_eq!(json, "\"140100000000\"");
        assert_eq!(serde_json::from_str::<RegionCode>(&json).unwrap(), code);
        // Short forms deserialize too; invalid ones fail.
        assert_eq!(serde_json::from_str::<RegionCode>("\"1401\"").unwrap(), code);
        let err = serde_json::from_str::<RegionCode>("\"140005\"").unwrap_err();
        assert!(err.to_string().contains("zero segment"), "{err}");
        assert!(serde_json::from_str::<RegionCode>("14").is_err());

        assert!(region("11") < region("1101"));
        assert!(region("1101") < region("12"));
        assert_eq!(format!("{code:?}"), "RegionCode(140100000000, city)");
        let parsed: RegionCode = "140100".parse().unwrap();
        assert_eq!(parsed, code);
        assert_eq!(RegionCode::try_from("1401"), Ok(code));
        assert_eq!(String::from(code), "140100000000");
    }

    // --- GridCode and BuildingCode -----------------------------------------

    #[test]
    fn grid_code_new_and_parse() {
        let community = region("140105001002");
        let grid = GridCode::new(&community, 7).unwrap();
        assert_eq!(grid.as_str(), "140105001002007");
        assert_eq!(grid.community(), community);
        assert_eq!(grid.seq(), 7);
        assert_eq!(GridCode::parse("140105001002007"), Ok(grid));
        assert_eq!(GridCode::parse(" 140105001002999 ").unwrap().seq(), 999);
        assert_eq!(format!("{grid:?}"), "GridCode(140105001002007)");
        let json = serde_json::to_string(&grid).unwrap();
        assert_eq!(json, "\"140105001002007\"");
        assert_eq!(serde_json::from_str::<GridCode>(&json).unwrap(), grid);
    }

    #[test]
    fn grid_code_rejects_bad_input() {
        let community = region("140105001002");
        assert_eq!(GridCode::new(&community, 0).unwrap_err().code(), "grid_code.seq_range");
        assert_eq!(GridCode::new(&community, 1000).unwrap_err().code(), "grid_code.seq_range");
        assert_eq!(GridCode::new(&region("140105001"), 1).unwrap_err().code(), "grid_code.not_community");
        let cases = [
            ("14010500100200a", "grid_code.digits"),
            ("", "grid_code.digits"),
            ("14010500100200", "grid_code.length"),
            ("1401050010020010", "grid_code.length"),
            ("140105001002000", "grid_code.seq_range"),
            ("140105001000001", "grid_code.not_community"),
            ("140100001002001", "region_code.inconsistent"),
            ("990105001002001", "region_code.province"),
        ];
        for (input, code) in cases {
            let err = GridCode::parse(input).unwrap_err();
            assert_eq!(err.code(), code, "{input:?}: {err}");
        }
    }

    #[test]
    fn building_code_new_and_parse() {
        let grid = GridCode::parse("140105001002007").unwrap();
        let building = BuildingCode::new(&grid, 42).unwrap();
        assert_eq!(building.as_str(), "14010500100200700042");
        assert_eq!(building.grid(), grid);
        assert_eq!(building.number(), 42);
        assert_eq!(BuildingCode::parse("14010500100200700042"), Ok(building));
        assert_eq!(BuildingCode::parse("14010500100200799999").unwrap().number(), 99_999);
        let json = serde_json::to_string(&building).unwrap();
        assert_eq!(serde_json::from_str::<BuildingCode>(&json).unwrap(), building);

        for number in [0, 100_000, u32::MAX] {
            assert_eq!(BuildingCode::new(&grid, number).unwrap_err().code(), "building_code.number_range");
        }
        let cases = [
            ("1401050010020070004x", "building_code.digits"),
            ("1401050010020070004", "building_code.length"),
            ("140105001002007000421", "building_code.length"),
            ("14010500100200700000", "building_code.number_range"),
            ("14010500100200000001", "grid_code.seq_range"),
        ];
        for (input, code) in cases {
            let err = BuildingCode::parse(input).unwrap_err();
            assert_eq!(err.code(), code, "{input:?}: {err}");
        }
    }

    // --- BoundedText ----------------------------------------------------------

    #[test]
    fn bounded_text_trims_and_counts_chars() {
        let name = Name100::parse("  迎泽区柳巷街道第一网格\u{3000}").unwrap();
        assert_eq!(name.as_str(), "迎泽区柳巷街道第一网格");
        assert_eq!(name.char_count(), 11);

        // 50 Chinese characters are 150 bytes but fit a PersonName.
        let fifty = "张".repeat(50);
        assert_eq!(PersonName::parse(&fifty).unwrap().as_str(), fifty);
        let err = PersonName::parse(&"张".repeat(51)).unwrap_err();
        assert_eq!(err, CodeError::TextTooLong { max: 50, len: 51 });
        assert_eq!(err.code(), "text.too_long");

        // Inner spaces are kept.
        assert_eq!(BoundedText::<20>::parse("Li  Ming").unwrap().as_str(), "Li  Ming");
        assert_eq!(BoundedText::<3>::MAX_CHARS, 3);
        assert_eq!(BoundedText::<3>::parse("abc").unwrap().into_inner(), "abc".to_owned());
    }

    #[test]
    fn bounded_text_rejects_empty_and_control_chars() {
        for input in ["", "   ", "\u{3000}", "\n\t"] {
            assert_eq!(Name100::parse(input).unwrap_err().code(), "text.empty", "{input:?}");
        }
        for input in ["a\nb", "a\tb", "a\u{0}b", "a\u{7f}b", "a\u{85}b", "a\u{202E}b"] {
            assert_eq!(Name100::parse(input).unwrap_err().code(), "text.control_char", "{input:?}");
        }
    }

    #[test]
    fn bounded_text_serde() {
        let name = PersonName::parse("王小明").unwrap();
        let json = serde_json::to_string(&name).unwrap();
        assert_eq!(json, "\"王小明\"");
        assert_eq!(serde_json::from_str::<PersonName>(&json).unwrap(), name);
        assert!(serde_json::from_str::<PersonName>("\" \"").is_err());
        let long = format!("\"{}\"", "x".repeat(51));
        assert!(serde_json::from_str::<PersonName>(&long).is_err());
        assert_eq!("王小明".parse::<PersonName>().unwrap(), name);
        assert_eq!(name.to_string(), "王小明");
    }

    // --- MobilePhone --------------------------------------------------------

    #[test]
    fn mobile_phone_normalizes() {
        for input in [
            "13800138000",
            " 138 0013 8000 ",
            "138-0013-8000",
            "+8613800138000",
            "+86 138 0013 8000",
            "+86-138-0013-8000",
            "008613800138000",
            "8613800138000",
        ] {
            let phone = MobilePhone::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(phone.as_str(), "13800138000", "{input}");
        }
        let phone = MobilePhone::parse("19912345678").unwrap();
        assert_eq!(phone.masked(), "199****5678");
        assert_eq!(format!("{phone:?}"), "MobilePhone(199****5678)");
        assert_eq!(phone.to_string(), "19912345678");
        let json = serde_json::to_string(&phone).unwrap();
        assert_eq!(json, "\"19912345678\"");
        assert_eq!(serde_json::from_str::<MobilePhone>(&json).unwrap(), phone);
    }

    #[test]
    fn mobile_phone_masked_example() {
        assert_eq!(MobilePhone::parse("13800138000").unwrap().masked(), "138****8000");
    }

    /// The UI convention for ID numbers: first 6 and last 4 shown, the
    /// 8 birth-date digits hidden, and `Debug` never shows more.
    #[test]
    fn id_number_masked_example() {
        let id = IdNumber::parse("110105198001070123").unwrap();
        assert_eq!(id.masked(), "110105********0123");
        assert_eq!(format!("{id:?}"), "IdNumber(110105********0123)");
    }

    #[test]
    fn mobile_phone_rejects() {
        for input in [
            "",
            "1380013800",   // 10 digits
            "138001380001", // 12 digits
            "12800138000",  // 12x is not a mobile prefix
            "10800138000",
            "23800138000",
            "0351-1234567",    // a landline
            "+85213800138000", // wrong country code
            "1380013800a",
            "138 0013 800０", // full-width digit
            "+86",
        ] {
            assert_eq!(MobilePhone::parse(input).unwrap_err(), CodeError::PhoneInvalid, "{input:?}");
        }
        let err = CodeError::PhoneInvalid;
        assert_eq!(err.code(), "phone.invalid");
    }

    // --- IdNumber -------------------------------------------------------------

    /// 11010519491231002X is the well-known sample number of GB 11643.
    const SAMPLE_ID: &str = "11010519491231002X";

    #[test]
    fn id_number_accepts_the_standard_sample() {
        let id = IdNumber::parse_on(SAMPLE_ID, today()).unwrap();
        assert_eq!(id.as_str(), SAMPLE_ID);
        assert_eq!(id.birth_date(), date(1949, 12, 31));
        assert_eq!(id.region_prefix(), "110105");
        assert!(!id.is_male()); // sequence 002
        assert_eq!(id.masked(), "110105********002X");
        assert_eq!(format!("{id:?}"), "IdNumber(110105********002X)");
        // Lowercase x is normalized.
        let lower = IdNumber::parse_on("11010519491231002x", today()).unwrap();
        assert_eq!(lower, id);
        assert_eq!(lower.to_string(), SAMPLE_ID);
        // Also through the clock-reading entry points.
        assert_eq!(SAMPLE_ID.parse::<IdNumber>().unwrap(), id);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{SAMPLE_ID}\""));
        assert_eq!(serde_json::from_str::<IdNumber>(&json).unwrap(), id);
    }

    #[test]
    fn id_number_other_known_numbers() {
        // 110105 19900307 012: weighted sum 176, 176 mod 11 = 0 → check "1".
        let id = IdNumber::parse_on("110105199003070121", today()).unwrap();
        assert!(!id.is_male()); // 17th digit 2
        assert_eq!(id.masked(), "110105********0121");
        // So the masking example of the style guide, 110105********0123,
        // would need a different birth date: 0123 is not its check digit.
        let err = IdNumber::parse_on("110105199003070123", today()).unwrap_err();
        assert_eq!(err.code(), "id_number.checksum");
        assert_eq!(id.age_on(date(2025, 3, 6)), 34);
        assert_eq!(id.age_on(date(2025, 3, 7)), 35);
        assert_eq!(id.age_on(date(1980, 1, 1)), 0);
    }

    #[test]
    fn id_number_converts_legacy_15_digits() {
        // 15-digit 110105 491231 002 is the sample above before 1999.
        let id = IdNumber::parse_on("110105491231002", today()).unwrap();
        assert_eq!(id.as_str(), SAMPLE_ID);
        assert_eq!(id.birth_date(), date(1949, 12, 31));
        let err = IdNumber::parse_on("110105491331002", today()).unwrap_err();
        assert_eq!(err.code(), "id_number.birth_date");
        let err = IdNumber::parse_on("11010549123100X", today()).unwrap_err();
        assert_eq!(err.code(), "id_number.format");
    }

    #[test]
    fn id_number_rejects() {
        let cases = [
            (String::new(), "id_number.length"),
            ("1101051949123100".to_owned(), "id_number.length"),
            ("1101051949123100211".to_owned(), "id_number.length"),
            ("11010519491231002Y".to_owned(), "id_number.format"),
            ("1101051949123X002X".to_owned(), "id_number.format"),
            ("11010519491231002０".to_owned(), "id_number.format"), // full-width 0
            ("１10105491231002".to_owned(), "id_number.format"),
            ("110105194912310021".to_owned(), "id_number.checksum"),
            ("110105194912310020".to_owned(), "id_number.checksum"),
            (with_check("99010519900101001"), "id_number.region"),
            (with_check("00010519900101001"), "id_number.region"),
            (with_check("11010519900230001"), "id_number.birth_date"),
            (with_check("11010519901301001"), "id_number.birth_date"),
            (with_check("11010518991231001"), "id_number.birth_date"),
            (with_check("11010520250602001"), "id_number.birth_date"),
        ];
        for (input, code) in cases {
            let err = IdNumber::parse_on(&input, today()).unwrap_err();
            assert_eq!(err.code(), code, "{input:?}: {err}");
            // Personal data is never echoed in the message.
            if !input.is_empty() {
                assert!(!err.to_string().contains(input.as_str()));
            }
        }
        // Today and 1900-01-01 are the inclusive bounds.
        assert!(IdNumber::parse_on(&with_check("11010520250601001"), today()).is_ok());
        assert!(IdNumber::parse_on(&with_check("11010519000101001"), today()).is_ok());
        // Residence permits of Hong Kong, Macao and Taiwan residents.
        assert!(IdNumber::parse_on(&with_check("83000019900101001"), today()).is_ok());
        assert!(IdNumber::parse_on(&with_check("81000019900101001"), today()).is_ok());
    }

    #[test]
    fn id_number_from_parts() {
        let id = IdNumber::from_parts("140105", date(1985, 2, 28), 37).unwrap();
        assert_eq!(&id.as_str()[..17], "14010519850228037");
        assert!(id.is_male());
        assert_eq!(id.birth_date(), date(1985, 2, 28));
        assert_eq!(IdNumber::from_parts("14010", date(1985, 2, 28), 1).unwrap_err(), CodeError::IdNumberFormat);
        assert_eq!(IdNumber::from_parts("140105", date(1985, 2, 28), 1000).unwrap_err(), CodeError::IdNumberFormat);
        assert_eq!(IdNumber::from_parts("140105", date(1899, 2, 28), 1).unwrap_err(), CodeError::IdNumberBirthDate);
    }

    // --- CodeError ------------------------------------------------------------

    #[test]
    fn every_error_code_is_listed_and_unique() {
        let errors = [
            CodeError::RegionLevelUnknown("x".into()),
            CodeError::RegionCodeDigits,
            CodeError::RegionCodeLength { len: 3 },
            CodeError::RegionCodeZero,
            CodeError::RegionCodeProvince { province: 99 },
            CodeError::RegionCodeInconsistent { code: "x".into() },
            CodeError::RegionCodeLevelMismatch { child: RegionLevel::City, parent: RegionLevel::City },
            CodeError::RegionCodeParentMismatch { child: "a".into(), parent: "b".into() },
            CodeError::GridCodeDigits,
            CodeError::GridCodeLength { len: 1 },
            CodeError::GridCodeNotCommunity { level: RegionLevel::City },
            CodeError::GridCodeSeqRange { seq: 0 },
            CodeError::BuildingCodeDigits,
            CodeError::BuildingCodeLength { len: 1 },
            CodeError::BuildingCodeNumberRange { number: 0 },
            CodeError::TextEmpty,
            CodeError::TextTooLong { max: 1, len: 2 },
            CodeError::TextControlChar,
            CodeError::PhoneInvalid,
            CodeError::IdNumberLength { len: 1 },
            CodeError::IdNumberFormat,
            CodeError::IdNumberChecksum,
            CodeError::IdNumberRegion,
            CodeError::IdNumberBirthDate,
        ];
        let codes: Vec<&str> = errors.iter().map(CodeError::code).collect();
        assert_eq!(codes, CodeError::ALL_CODES);
        let mut unique = codes.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), codes.len());
        for error in &errors {
            assert!(!error.to_string().is_empty());
        }
    }

    // --- Property tests -----------------------------------------------------

    /// A random valid region code of a random level, as 12 digits.
    fn region_digits() -> impl Strategy<Value = String> {
        region_digits_with(0..5usize)
    }

    /// A random valid region code whose lowest non-zero segment has an index
    /// (0 = province … 4 = community) drawn from `lowest`.
    fn region_digits_with(lowest: impl Strategy<Value = usize>) -> impl Strategy<Value = String> {
        (prop::sample::select(PROVINCE_CODES.to_vec()), 1u16..=99, 1u16..=99, 1u16..=999, 1u16..=999, lowest).prop_map(
            |(p, c, d, t, v, lowest)| {
                let keep = |index: usize, value: u16| if index <= lowest { value } else { 0 };
                format!("{p:02}{:02}{:02}{:03}{:03}", keep(1, c), keep(2, d), keep(3, t), keep(4, v))
            },
        )
    }

    fn community_code() -> impl Strategy<Value = RegionCode> {
        region_digits_with(Just(4)).prop_map(|s| region(&s))
    }

    /// 17 valid leading characters of an 18-character ID number.
    fn id_first17() -> impl Strategy<Value = String> {
        id_first17_born_within(0..365 * 120)
    }

    /// Like [`id_first17`], born `days` days after 1900-01-01.
    fn id_first17_born_within(days: std::ops::Range<i64>) -> impl Strategy<Value = String> {
        (prop::sample::select(PROVINCE_CODES.to_vec()), 0u32..10_000, days, 0u16..1000).prop_map(
            |(province, rest, days, seq)| {
                let birth = ID_MIN_BIRTH + chrono::Duration::days(days);
                format!("{province:02}{rest:04}{}{seq:03}", birth.format("%Y%m%d"))
            },
        )
    }

    proptest! {
        #[test]
        fn region_codes_round_trip(digits in region_digits()) {
            let code = RegionCode::parse(&digits).unwrap();
            prop_assert_eq!(code.as_str(), digits.as_str());
            prop_assert_eq!(RegionCode::parse(code.as_str()).unwrap(), code);
            prop_assert_eq!(RegionCode::parse(code.short()).unwrap(), code);
            prop_assert_eq!(code.short().len(), code.level().digits());
            prop_assert!(digits.starts_with(code.short()));
            prop_assert!(digits[code.short().len()..].bytes().all(|b| b == b'0'));
            let json = serde_json::to_string(&code).unwrap();
            prop_assert_eq!(serde_json::from_str::<RegionCode>(&json).unwrap(), code);
            if let Some(parent) = code.parent_code() {
                prop_assert_eq!(Some(parent.level()), code.level().parent());
                prop_assert!(code.is_direct_child_of(&parent));
                prop_assert_eq!(code.validate_child(&parent), Ok(()));
                prop_assert!(code.is_within(&parent));
                prop_assert!(!parent.is_within(&code));
            } else {
                prop_assert_eq!(code.level(), RegionLevel::Province);
            }
        }

        #[test]
        fn region_code_with_gap_is_rejected(
            (digits, gap) in (2usize..5).prop_flat_map(|lowest| {
                (region_digits_with(Just(lowest)), 1..lowest)
            }),
        ) {
            // Zero one segment above the lowest non-zero one.
            let (start, end) = SEGMENTS[gap];
            let mut broken = digits.into_bytes();
            broken[start..end].fill(b'0');
            let broken = String::from_utf8(broken).unwrap();
            let city_exception = gap == 2
                && CITIES_WITHOUT_COUNTIES
                    .iter()
                    .any(|city| broken.as_bytes().starts_with(city));
            prop_assume!(!city_exception);
            prop_assert_eq!(
                RegionCode::parse(&broken).unwrap_err().code(),
                "region_code.inconsistent"
            );
        }

        #[test]
        fn arbitrary_strings_never_panic(s in "\\PC{0,20}|[0-9]{0,14}") {
            let _ = RegionCode::parse(&s);
            let _ = GridCode::parse(&s);
            let _ = BuildingCode::parse(&s);
            let _ = MobilePhone::parse(&s);
            let _ = IdNumber::parse_on(&s, today());
            if let Ok(code) = RegionCode::parse(&s) {
                prop_assert_eq!(RegionCode::parse(code.as_str()).unwrap(), code);
            }
        }

        #[test]
        fn valid_id_numbers_parse(first17 in id_first17()) {
            let full = with_check(&first17);
            let id = IdNumber::parse_on(&full, today()).unwrap();
            prop_assert_eq!(id.as_str(), full.as_str());
            prop_assert_eq!(id.birth_date().format("%Y%m%d").to_string(), &first17[6..14]);
            prop_assert_eq!(id.is_male(), (first17.as_bytes()[16] - b'0') % 2 == 1);
            prop_assert_eq!(IdNumber::parse_on(&full.to_lowercase(), today()).unwrap(), id.clone());
            let masked = id.masked();
            prop_assert_eq!(masked.len(), 18);
            prop_assert_eq!(&masked[..6], &full[..6]);
            prop_assert_eq!(&masked[14..], &full[14..]);
        }

        /// Changing any single character to another valid character always
        /// breaks the checksum: each weight is non-zero mod 11 and a digit
        /// changes by at most 9, so the weighted sum mod 11 must change, and
        /// changing the check character itself obviously mismatches. Because
        /// the checksum is verified first, the error is always "checksum".
        #[test]
        fn single_character_changes_fail_the_checksum(
            first17 in id_first17(),
            position in 0usize..18,
            step in 1usize..10,
        ) {
            // Replace the character by another one allowed at its position,
            // `step` places further round the alphabet (so never itself).
            let alphabet: &[u8] = if position == 17 { b"0123456789X" } else { b"0123456789" };
            let mut bytes = with_check(&first17).into_bytes();
            let current = alphabet.iter().position(|&c| c == bytes[position]).unwrap();
            bytes[position] = alphabet[(current + step) % alphabet.len()];
            let changed = String::from_utf8(bytes).unwrap();
            prop_assert_eq!(
                IdNumber::parse_on(&changed, today()).unwrap_err(),
                CodeError::IdNumberChecksum
            );
        }

        #[test]
        fn legacy_ids_convert(first17 in id_first17_born_within(0..36_524)) {
            // 36 524 days after 1900-01-01 is 1999-12-31.
            prop_assert_eq!(&first17[6..8], "19");
            let legacy = format!("{}{}", &first17[..6], &first17[8..]);
            let id = IdNumber::parse_on(&legacy, today()).unwrap();
            prop_assert_eq!(id.as_str(), with_check(&first17));
        }

        #[test]
        fn grid_and_building_codes_round_trip(
            community in community_code(),
            seq in 1u16..=999,
            number in 1u32..=99_999,
        ) {
            let grid = GridCode::new(&community, seq).unwrap();
            prop_assert_eq!(grid.as_str().len(), 15);
            prop_assert_eq!(GridCode::parse(grid.as_str()).unwrap(), grid);
            prop_assert_eq!(grid.community(), community);
            prop_assert_eq!(grid.seq(), seq);
            let json = serde_json::to_string(&grid).unwrap();
            prop_assert_eq!(serde_json::from_str::<GridCode>(&json).unwrap(), grid);

            let building = BuildingCode::new(&grid, number).unwrap();
            prop_assert_eq!(building.as_str().len(), 20);
            prop_assert_eq!(BuildingCode::parse(building.as_str()).unwrap(), building);
            prop_assert_eq!(building.grid(), grid);
            prop_assert_eq!(building.number(), number);
            prop_assert!(building.as_str().starts_with(grid.as_str()));
        }

        #[test]
        fn bounded_text_never_exceeds_max(s in "\\PC{0,16}|[ a-z张王\\t\u{3000}]{0,16}") {
            match BoundedText::<10>::parse(&s) {
                Ok(text) => {
                    prop_assert!(text.char_count() <= 10);
                    prop_assert!(text.char_count() >= 1);
                    prop_assert_eq!(text.as_str(), s.trim());
                    prop_assert!(!text.as_str().chars().any(is_forbidden_text_char));
                }
                Err(err) => {
                    let trimmed = s.trim();
                    let expected = if trimmed.is_empty() {
                        "text.empty"
                    } else if trimmed.chars().any(is_forbidden_text_char) {
                        "text.control_char"
                    } else {
                        prop_assert!(trimmed.chars().count() > 10);
                        "text.too_long"
                    };
                    prop_assert_eq!(err.code(), expected);
                }
            }
        }

        #[test]
        fn valid_phones_round_trip(second in 3u8..=9, rest in 0u64..1_000_000_000) {
            let number = format!("1{second}{rest:09}");
            let phone = MobilePhone::parse(&number).unwrap();
            prop_assert_eq!(phone.as_str(), number.as_str());
            let spaced = format!("+86 {} {} {}", &number[..3], &number[3..7], &number[7..]);
            prop_assert_eq!(MobilePhone::parse(&spaced).unwrap(), phone.clone());
            prop_assert_eq!(phone.masked(), format!("{}****{}", &number[..3], &number[7..]));
        }
    }
}
