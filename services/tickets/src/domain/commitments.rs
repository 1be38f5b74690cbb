//! Forbidden commitments (the handbook's "list of forbidden commitments"): promises an
//! agent must not make in a public reply, such as 终身免费维修 (lifetime free repair) or
//! 绝对无问题 (absolutely no problem). A public reply of an agent that makes one is
//! refused with the rule named, or held back for a supervisor as an internal note,
//! whichever the configuration says.
//!
//! Matching ignores case, spaces and punctuation, and reads full-width letters and digits
//! as their ASCII forms, so "Lifetime  FREE-repair" and "终身 免费维修！" are caught as
//! well as the phrases as written.

use super::DomainError;

/// What happens to a reply that makes a forbidden commitment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnForbidden {
    /// Refused: the agent rewrites it.
    Refuse,
    /// Kept as an internal note, for a supervisor to review; nothing reaches the
    /// customer and no clock is met.
    Hold,
}

impl OnForbidden {
    /// `refuse` or `hold`.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "refuse" => Some(Self::Refuse),
            "hold" => Some(Self::Hold),
            _ => None,
        }
    }
}

/// The configured list and what to do on a match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commitments {
    /// Each rule as configured (it names the rule in answers) and folded for matching.
    rules: Vec<(String, String)>,
    pub on_forbidden: OnForbidden,
}

/// The handbooks' examples, in Chinese and English.
pub const DEFAULT_FORBIDDEN: &[&str] = &[
    "终身免费维修",
    "终身免费保修",
    "绝对无问题",
    "绝对没问题",
    "lifetime free repair",
    "absolutely no problem",
];

impl Default for Commitments {
    fn default() -> Self {
        Self::new(DEFAULT_FORBIDDEN.iter().copied(), OnForbidden::Refuse)
    }
}

impl Commitments {
    /// The rules among `phrases` that fold to something (blank ones are dropped).
    pub fn new<'a>(phrases: impl IntoIterator<Item = &'a str>, on_forbidden: OnForbidden) -> Self {
        let rules = phrases
            .into_iter()
            .map(|p| (p.trim().to_owned(), fold(p)))
            .filter(|(_, folded)| !folded.is_empty())
            .collect();
        Self {
            rules,
            on_forbidden,
        }
    }

    /// The first rule `body` breaks, as configured.
    pub fn broken_by(&self, body: &str) -> Option<&str> {
        let folded = fold(body);
        self.rules
            .iter()
            .find(|(_, rule)| folded.contains(rule.as_str()))
            .map(|(phrase, _)| phrase.as_str())
    }

    /// Refused: the error naming the rule, on the field `body`.
    pub fn refusal(rule: &str) -> DomainError {
        DomainError::invalid(
            "body",
            format!(
                "promises \u{201c}{rule}\u{201d}, which is on the list of forbidden commitments"
            ),
        )
    }
}

/// Lower case, without spaces and punctuation, full-width forms as ASCII.
fn fold(text: &str) -> String {
    text.chars()
        .map(|c| match u32::from(c) {
            // Full-width ASCII (U+FF01..U+FF5E) to ASCII.
            n @ 0xFF01..=0xFF5E => char::from_u32(n - 0xFEE0).unwrap_or(c),
            _ => c,
        })
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_and_english_promises_are_caught_whatever_their_spacing_and_case() {
        let list = Commitments::default();
        for (body, rule) in [
            ("我们承诺终身免费维修。", "终身免费维修"),
            ("放心，终身 免费维修！", "终身免费维修"),
            ("这个绝对没问题", "绝对没问题"),
            ("You get Lifetime  FREE-repair!", "lifetime free repair"),
            ("ＡＢＳＯＬＵＴＥＬＹ no problem", "absolutely no problem"),
        ] {
            assert_eq!(list.broken_by(body), Some(rule), "{body}");
        }
        for fine in [
            "我们会在24小时内安排维修",
            "The repair is free under warranty",
            "No problem is too small for us",
            "",
        ] {
            assert_eq!(list.broken_by(fine), None, "{fine}");
        }
    }

    #[test]
    fn a_configured_list_replaces_the_default_and_blank_rules_match_nothing() {
        let list = Commitments::new(["保证退款", " ", "!!"], OnForbidden::Hold);
        assert_eq!(list.broken_by("我们保证退款"), Some("保证退款"));
        assert_eq!(list.broken_by("绝对没问题"), None);
        assert_eq!(list.broken_by("anything at all"), None);
        assert_eq!(OnForbidden::parse(" Hold "), Some(OnForbidden::Hold));
        assert_eq!(OnForbidden::parse("warn"), None);
    }
}
