//! Personal data in free text: phone numbers, e-mail addresses and ID numbers that people
//! type into ticket subjects, descriptions, replies, return notes and carrier details are
//! found and **masked** before anything stores them.
//!
//! Why mask rather than seal: the customer's contact of record lives in care's vault,
//! sealed and read only by `pii:read` callers under audit. A copy typed into free text is a
//! second, unmanaged copy: sealing it would need keys, rotation and an erasure path of its
//! own in every service that keeps text, and the agents reading a ticket need the words,
//! not the number (care shows the number to those allowed to see it). A masked value keeps
//! enough to recognise ("the number ending 5678") and nothing to contact or identify.
//!
//! What is detected, and what it becomes (the forms are part of the contract; tests pin
//! them):
//!
//! | found | example | stored as |
//! |---|---|---|
//! | Chinese mobile, optional `+86`/`0086`/`86`, whole or split 3-4-4 by spaces or hyphens | `+86 138-1234-5678` | `138****5678` (first 3, last 4) |
//! | other phone numbers: `+`/`00` and 7–15 digits, or 7–15 digits in groups (`555-123-4567`, `(020) 7946 0958`, `010-12345678`, `01 23 45 67 89`) | `+44 20 7946 0958` | `+** ** **** **58` (every digit but the last two starred, layout kept) |
//! | e-mail address | `jane.doe@example.com` | `j***@***` |
//! | Chinese resident ID, 18 characters (region, birth date, sequence, check digit or `X`), optionally split 6-8-4 | `11010519491231002X` | `[ID number]` |
//! | legacy 15-digit resident ID | `110105491231002` | `[ID number]` |
//!
//! A value counts only as a whole token: digits glued to letters, digits or `-`/`.`/`_`
//! before it, or to a digit after it, are something else (an order number, a SKU, a
//! longer number). Dates (`2024-11-23`, `23.11.2024`) are left alone, and so are bare runs
//! of digits without separators other than a mobile or an ID number (order numbers). The
//! masked forms are never detected again, so masking is idempotent.
//!
//! Pure functions, no I/O; depends on `regex` only.

use std::{borrow::Cow, ops::Range, sync::LazyLock};

use regex::Regex;

/// What replaces the free text of a customer whose personal data retention removed
/// (`CustomerAnonymised`), in every service that kept some.
pub const ANONYMISED_TEXT: &str = "[removed: customer anonymised]";

/// What an ID number becomes.
pub const MASKED_ID: &str = "[ID number]";

/// The most digits a phone number has (E.164).
const MAX_PHONE_DIGITS: usize = 15;
/// The fewest digits counted as a phone number.
const MIN_PHONE_DIGITS: usize = 7;

/// The kinds of personal data found in text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Email,
    IdNumber,
    Mobile,
    Phone,
}

/// Each kind's pattern, in order of precedence: where two overlap, the earlier one wins
/// (an e-mail address made of a phone number is an e-mail address; a date is no phone
/// number). Dates are found only to be left alone.
const PATTERNS: [(Candidate, &str); 6] = [
    (
        Candidate::Email,
        r"[A-Za-z0-9][A-Za-z0-9._%+\-]*@[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)+",
    ),
    (
        Candidate::Date,
        r"\d{4}[\-/.]\d{1,2}[\-/.]\d{1,2}|\d{1,2}[\-/.]\d{1,2}[\-/.]\d{2,4}",
    ),
    (
        Candidate::Id,
        r"[1-9]\d{5}[ \-]?(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])[ \-]?\d{3}[\dXx]",
    ),
    (
        Candidate::Id,
        r"[1-9]\d{5}\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}",
    ),
    (
        Candidate::Mobile,
        r"(?:(?:\+|00)?86[ \-]?)?1[3-9]\d(?:\d{8}|[ \-]\d{4}[ \-]\d{4})",
    ),
    // Three shapes: a `+`/`00` prefix and any grouping; a trunk `0` and groups of two or
    // more (French numbers, Chinese landlines); groups whose later parts have three or
    // more digits (`555-123-4567`). Dates and sums rarely take these shapes.
    (
        Candidate::Phone,
        r"(?:\+|00)\d{1,3}(?:[ .\-]?\(?\d{1,5}\)?){1,7}|\(?0\d{1,4}\)?(?:[ .\-]\d{2,8}){1,6}|\(?\d{2,5}\)?(?:[ .\-]\d{3,8}){1,4}",
    ),
];

#[allow(
    clippy::expect_used,
    reason = "constant patterns; the unit tests compile them"
)]
static DETECTORS: LazyLock<Vec<(Candidate, Regex)>> = LazyLock::new(|| {
    PATTERNS
        .iter()
        .map(|(kind, pattern)| {
            let re = Regex::new(pattern).expect("the personal-data patterns compile");
            (*kind, re)
        })
        .collect()
});

/// `text` with every phone number, e-mail address and ID number in it masked; borrowed
/// when there was nothing to mask.
pub fn mask_personal_data(text: &str) -> Cow<'_, str> {
    let found = detect(text);
    if found.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut masked = String::with_capacity(text.len());
    let mut copied = 0;
    for f in found {
        masked.push_str(&text[copied..f.range.start]);
        masked.push_str(&f.masked);
        copied = f.range.end;
    }
    masked.push_str(&text[copied..]);
    Cow::Owned(masked)
}

/// [`mask_personal_data`] as an owned string, for the text a command stores.
pub fn masked(text: &str) -> String {
    mask_personal_data(text).into_owned()
}

/// Whether `text` holds a phone number, e-mail address or ID number in clear.
pub fn contains_personal_data(text: &str) -> bool {
    !detect(text).is_empty()
}

/// What [`detect`] found: where, what kind, and what it is masked to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub range: Range<usize>,
    pub kind: Kind,
    pub masked: String,
}

/// Every value found in `text`, in order, not overlapping.
pub fn detect(text: &str) -> Vec<Found> {
    // What each kind claimed, in order of precedence; `None` for dates.
    let mut claimed: Vec<(Range<usize>, Option<Found>)> = Vec::new();
    for (candidate, re) in DETECTORS.iter() {
        let mut pos = 0;
        while let Some(m) = re.find_at(text, pos) {
            // A kind that goes first may have claimed part of the match: a phone number
            // ends before it (a greedy match runs on into the next number), anything else
            // is no match here.
            let taken = |at: usize| claimed.iter().any(|(r, _)| r.contains(&at));
            let cut = claimed
                .iter()
                .map(|(r, _)| r.start)
                .filter(|s| m.range().contains(s))
                .min()
                .unwrap_or(m.end());
            let truncates = matches!(candidate, Candidate::Phone) || cut == m.end();
            // Right after a value found already (`…0086-13812345678`), a hyphen or dot
            // separates rather than glues.
            let follows = claimed
                .iter()
                .any(|(r, _)| r.end == m.start() || r.end + 1 == m.start());
            let mut hit = (!taken(m.start()) && truncates)
                .then(|| candidate.judge(text, m.start(), cut, follows))
                .flatten();
            // An international number (`+1 130 1000 1000`, `+1 1000-10-10`) may hold what
            // looked like a Chinese mobile or a date: taken whole, it replaces them.
            let international = m.as_str().starts_with('+') || m.as_str().starts_with("00");
            if matches!(candidate, Candidate::Phone) && international && !taken(m.start()) {
                let inside = |r: &Range<usize>, f: &Option<Found>| {
                    m.range().contains(&r.start)
                        && r.end <= m.end()
                        && f.as_ref().is_none_or(|f| f.kind == Kind::Mobile)
                };
                let whole = candidate.judge(text, m.start(), m.end(), follows);
                if let Some((range, found)) = whole {
                    let others = claimed
                        .iter()
                        .any(|(r, f)| r.start < range.end && range.start < r.end && !inside(r, f));
                    let replaces = claimed
                        .iter()
                        .any(|(r, f)| inside(r, f) && r.end <= range.end);
                    if replaces && !others {
                        claimed.retain(|(r, f)| !inside(r, f));
                        hit = Some((range, found));
                    }
                }
            }
            match hit {
                Some((range, found)) => {
                    pos = range.end;
                    claimed.push((range, found));
                }
                // Part of something longer, or taken: look again one character further on.
                None => pos = m.start() + char_len(text, m.start()),
            }
            if pos >= text.len() {
                break;
            }
        }
    }
    let mut found: Vec<Found> = claimed.into_iter().filter_map(|(_, f)| f).collect();
    found.sort_by_key(|f| f.range.start);
    found
}

#[derive(Debug, Clone, Copy)]
enum Candidate {
    Email,
    Date,
    Id,
    Mobile,
    Phone,
}

impl Candidate {
    /// The value at `start..end` if it stands on its own (its range, and what it is
    /// masked to unless it is a date).
    fn judge(
        self,
        text: &str,
        start: usize,
        end: usize,
        follows_a_value: bool,
    ) -> Option<(Range<usize>, Option<Found>)> {
        let value = &text[start..end];
        // A number must not continue a token before it (an e-mail address's own
        // characters bound it).
        let before = text[..start].chars().next_back();
        let bounded = matches!(self, Self::Email) || value.starts_with('+') || follows_a_value;
        if !bounded && before.is_some_and(glued) {
            return None;
        }
        let value = match self {
            // A greedy match may have taken a number that follows the phone number: drop
            // trailing groups until it has at most 15 digits.
            Self::Phone => {
                let mut phone = value.trim_end_matches(is_separator);
                while digits(phone) > MAX_PHONE_DIGITS {
                    phone = phone[..phone.rfind(is_separator)?].trim_end_matches(is_separator);
                }
                if digits(phone) < MIN_PHONE_DIGITS {
                    return None;
                }
                phone
            }
            _ => value,
        };
        // Nor run on into a digit or a value masked already (`0010 138****5678`).
        let end = start + value.len();
        let after = text[end..].chars().next();
        if !matches!(self, Self::Email) && after.is_some_and(|c| c.is_ascii_digit() || c == '*') {
            return None;
        }
        let (kind, masked) = match self {
            Self::Date => return Some((start..end, None)),
            Self::Email => (Kind::Email, mask_email(value)),
            Self::Phone => (Kind::Phone, mask_phone(value)),
            Self::Id => (Kind::IdNumber, MASKED_ID.to_owned()),
            Self::Mobile => (Kind::Mobile, mask_mobile(value)),
        };
        let found = Found {
            range: start..end,
            kind,
            masked,
        };
        Some((start..end, Some(found)))
    }
}

/// A character that makes a following number part of a longer token (`ORD-2024…`,
/// `v1.13812345678`, `****5678`, the `+130 …` of an international number).
fn glued(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '*' | '+')
}

fn is_separator(c: char) -> bool {
    matches!(c, ' ' | '.' | '-' | '(' | ')')
}

fn digits(s: &str) -> usize {
    s.chars().filter(char::is_ascii_digit).count()
}

fn char_len(text: &str, at: usize) -> usize {
    text[at..].chars().next().map_or(1, char::len_utf8)
}

/// `13812345678` → `138****5678`: the national number's first three and last four digits.
fn mask_mobile(value: &str) -> String {
    let all: Vec<char> = value.chars().filter(char::is_ascii_digit).collect();
    let national = &all[all.len().saturating_sub(11)..];
    let head: String = national.iter().take(3).collect();
    let tail: String = national
        .iter()
        .skip(national.len().saturating_sub(4))
        .collect();
    format!("{head}****{tail}")
}

/// Every digit but the last two starred; `+`, spaces, hyphens and brackets stay.
fn mask_phone(value: &str) -> String {
    let total = digits(value);
    let mut seen = 0;
    value
        .chars()
        .map(|c| {
            if c.is_ascii_digit() {
                seen += 1;
                if seen + 2 > total { c } else { '*' }
            } else {
                c
            }
        })
        .collect()
}

/// `jane.doe@example.com` → `j***@***`.
fn mask_email(value: &str) -> String {
    let first = value.chars().next().unwrap_or('*');
    format!("{first}***@***")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn masked(text: &str) -> String {
        mask_personal_data(text).into_owned()
    }

    #[test]
    fn the_patterns_compile() {
        for (_, pattern) in PATTERNS {
            assert!(Regex::new(pattern).is_ok(), "{pattern}");
        }
    }

    #[test]
    fn chinese_mobiles_keep_their_first_three_and_last_four_digits() {
        for phone in [
            "13812345678",
            "+8613812345678",
            "+86 138 1234 5678",
            "0086-138-1234-5678",
            "138-1234-5678",
            "+86-13812345678",
        ] {
            assert_eq!(masked(phone), "138****5678", "{phone}");
        }
        assert_eq!(
            masked("客户电话13812345678，请回电"),
            "客户电话138****5678，请回电"
        );
        assert_eq!(
            masked("call 19912345678 or 15012345678."),
            "call 199****5678 or 150****5678."
        );
    }

    #[test]
    fn other_phone_numbers_keep_their_layout_and_last_two_digits() {
        let cases = [
            ("+44 20 7946 0958", "+** ** **** **58"),
            ("+1 (555) 123-4567", "+* (***) ***-**67"),
            ("555-123-4567", "***-***-**67"),
            ("(020) 7946 0958", "(***) **** **58"),
            ("010-12345678", "***-******78"),
            ("0755 8888 6666", "**** **** **66"),
            ("01 23 45 67 89", "** ** ** ** 89"),
            ("0044 20 7946 0958", "**** ** **** **58"),
        ];
        for (phone, want) in cases {
            assert_eq!(masked(&format!("tel: {phone}.")), format!("tel: {want}."));
        }
    }

    #[test]
    fn e_mail_addresses_keep_their_first_character() {
        assert_eq!(
            masked("write to jane.doe+kettle@mail.example.com please"),
            "write to j***@*** please"
        );
        // A phone number used as a mailbox is an e-mail address.
        assert_eq!(masked("13812345678@163.com"), "1***@***");
        assert_eq!(masked("邮箱:wang_li@qq.com。"), "邮箱:w***@***。");
    }

    #[test]
    fn id_numbers_are_masked_whole() {
        for id in [
            "11010519491231002X",
            "110105194912310021",
            "11010519491231002x",
            "110105 19491231 002X",
            "110105491231002",
        ] {
            assert_eq!(masked(&format!("身份证{id}")), "身份证[ID number]", "{id}");
        }
    }

    #[test]
    fn ordinary_numbers_are_left_alone() {
        for text in [
            "order 2024112300123 arrived",
            "ORD-2024-000123",
            "delivered 2024-11-23 10:30",
            "on 23.11.2024 and 01.02.2024",
            "paid 1,299.00 CNY for 2 kettles",
            "SKU KTL-1381234567",
            "tracking SF1234567890123",
            "a 12-digit number 138123456789",
            "version 1.2.3",
            "s3://evidence/1.jpg",
            "",
        ] {
            assert_eq!(masked(text), text);
            assert!(matches!(mask_personal_data(text), Cow::Borrowed(_)));
        }
    }

    #[test]
    fn several_values_in_one_text_are_all_masked() {
        let text = "Wang, 13812345678 / +44 20 7946 0958, wang@example.cn, ID 11010519491231002X";
        assert_eq!(
            masked(text),
            "Wang, 138****5678 / +** ** **** **58, w***@***, ID [ID number]"
        );
        let kinds: Vec<Kind> = detect(text).iter().map(|f| f.kind).collect();
        assert_eq!(
            kinds,
            [Kind::Mobile, Kind::Phone, Kind::Email, Kind::IdNumber]
        );
    }

    #[test]
    fn a_number_after_a_phone_number_does_not_hide_it() {
        assert_eq!(
            masked("call +86 138 1234 5678 2 times"),
            "call 138****5678 2 times"
        );
        assert_eq!(
            masked("call 555-123-4567 2 times"),
            "call ***-***-**67 2 times"
        );
        assert_eq!(
            masked("+44 20 7946 0958 12 34 56 78"),
            "+** ** **** **** 12 34 56 78"
        );
    }

    #[test]
    fn the_anonymised_marker_and_masked_forms_are_clean() {
        for text in [
            ANONYMISED_TEXT,
            MASKED_ID,
            "138****5678",
            "j***@***",
            "+** **58",
        ] {
            assert!(!contains_personal_data(text), "{text}");
        }
    }

    fn mobile() -> impl Strategy<Value = String> {
        (
            proptest::sample::select(vec!["", "+86", "+86 ", "0086-", "86 "]),
            3u8..=9,
            proptest::collection::vec(0u8..=9, 9),
            proptest::sample::select(vec!["", " ", "-"]),
        )
            .prop_map(|(prefix, second, rest, sep)| {
                let d: String = rest.iter().map(|d| char::from(b'0' + d)).collect();
                format!(
                    "{prefix}1{second}{}{sep}{}{sep}{}",
                    &d[..1],
                    &d[1..5],
                    &d[5..]
                )
            })
    }

    fn phone() -> impl Strategy<Value = String> {
        (
            proptest::sample::select(vec!["+", "00"]),
            1u32..=999,
            proptest::collection::vec(10u32..=99_999, 2..=3),
            proptest::sample::select(vec![" ", "-", "."]),
        )
            .prop_map(|(prefix, country, groups, sep)| {
                let groups: Vec<String> = groups.iter().map(u32::to_string).collect();
                format!("{prefix}{country} {}", groups.join(sep))
            })
            .prop_filter("7 to 15 digits", |p| {
                (MIN_PHONE_DIGITS..=MAX_PHONE_DIGITS).contains(&digits(p))
            })
    }

    fn email() -> impl Strategy<Value = String> {
        "[a-z][a-z0-9._]{0,10}[a-z0-9]@[a-z]{1,8}\\.(com|cn|net|org)"
    }

    fn id_number() -> impl Strategy<Value = String> {
        (
            100_000u32..=999_999,
            1930u32..=2020,
            1u32..=12,
            1u32..=28,
            0u32..=999,
            proptest::sample::select(vec!["0", "5", "9", "X"]),
        )
            .prop_map(|(region, year, month, day, seq, check)| {
                format!("{region}{year}{month:02}{day:02}{seq:03}{check}")
            })
    }

    fn filler() -> impl Strategy<Value = String> {
        // Whatever surrounds a value, it ends and starts a token.
        prop_oneof![
            Just(" ".to_owned()),
            "[a-zA-Z ,.:;!?]{0,12}".prop_map(|s| format!(" {s} ")),
            "[\u{4e00}-\u{4e80}]{0,6}".prop_map(|s| format!("{s}，")),
        ]
    }

    fn value() -> impl Strategy<Value = String> {
        prop_oneof![mobile(), phone(), email(), id_number()]
    }

    proptest! {
        #[test]
        fn masked_text_holds_none_of_the_values_put_in(
            parts in proptest::collection::vec((filler(), value()), 1..4),
            tail in filler(),
        ) {
            let mut text = String::new();
            let mut values = Vec::new();
            for (filler, value) in &parts {
                text.push_str(filler);
                values.push(text.len()..text.len() + value.len());
                text.push_str(value);
            }
            text.push_str(&tail);
            let out = masked(&text);
            for (_, value) in &parts {
                prop_assert!(!out.contains(value.as_str()), "{value} survived in {out:?}");
            }
            prop_assert!(!contains_personal_data(&out), "{out:?} still holds personal data");
            // Every digit and letter of every value is inside something masked (two
            // numbers apart by a space may well be masked as one).
            let found = detect(&text);
            for value in values {
                let covered = value
                    .clone()
                    .filter(|i| text.as_bytes()[*i].is_ascii_alphanumeric())
                    .all(|i| found.iter().any(|f| f.range.contains(&i)));
                prop_assert!(covered, "{:?} not all masked in {text:?}", &text[value]);
            }
        }

        #[test]
        fn masking_is_idempotent_on_any_text(text in "[0-9 +\\-.()@a-zX*_\u{4e00}]{0,60}") {
            let once = masked(&text);
            prop_assert_eq!(masked(&once), once.clone());
            prop_assert!(!contains_personal_data(&once));
        }
    }
}
