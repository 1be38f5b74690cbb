//! The product facts of a ticket (SKU, product line, batch or lot, region, order line) and
//! the form their codes must have. They are codes, not text: a restricted alphabet keeps
//! names, phone numbers written with spaces and e-mail addresses out of them, and a bare
//! mobile or ID number is refused too, so they may travel in events and reports that must
//! hold no personal data.

/// What a ticket is about, each fact optional; set when the ticket is created.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ProductFacts {
    pub sku: Option<String>,
    pub product_line: Option<String>,
    /// The production batch or lot of the unit.
    pub batch: Option<String>,
    pub region_code: Option<String>,
    /// The line of the ticket's order; with the ticket's order id, the order line.
    pub order_line_id: Option<String>,
}

impl ProductFacts {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// The longest SKU, product line, batch or order line id.
pub const MAX_PRODUCT_CODE: usize = 64;
/// The longest region code.
pub const MAX_REGION_CODE: usize = 32;

/// A product code as given (trimmed; empty means not given): at most
/// [`MAX_PRODUCT_CODE`] letters, digits and `-_./:`.
pub fn product_code(value: &str) -> Result<Option<String>, String> {
    code(value, MAX_PRODUCT_CODE, "-_./:")
}

/// A region code as given (trimmed; empty means not given): at most [`MAX_REGION_CODE`]
/// letters, digits, `-` and `_`.
pub fn region_code(value: &str) -> Result<Option<String>, String> {
    code(value, MAX_REGION_CODE, "-_")
}

fn code(value: &str, max: usize, punctuation: &str) -> Result<Option<String>, String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    if value.chars().count() > max {
        return Err(format!("must be at most {max} characters"));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || punctuation.contains(c);
    if !value.chars().all(allowed) {
        return Err(format!(
            "may hold only letters, digits and {}",
            punctuation
                .chars()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    // A bare mobile or ID number is all digits: the alphabet lets it through.
    if aftersales_platform::pii::contains_personal_data(value) {
        return Err("looks like a phone or ID number, which is personal data".into());
    }
    Ok(Some(value.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_trimmed_and_empty_means_not_given() {
        assert_eq!(product_code("  KT-100/2 "), Ok(Some("KT-100/2".into())));
        assert_eq!(
            product_code("small_appliance"),
            Ok(Some("small_appliance".into()))
        );
        assert_eq!(product_code("LOT:2026.11"), Ok(Some("LOT:2026.11".into())));
        assert_eq!(product_code(""), Ok(None));
        assert_eq!(region_code(" \t"), Ok(None));
        assert_eq!(region_code("CN-SH"), Ok(Some("CN-SH".into())));
    }

    #[test]
    fn free_text_and_contacts_are_not_codes() {
        for bad in [
            "kettle 1.7l",
            "j.doe@example.com",
            "138 0013 8000",
            "水壶",
            "a;drop",
            "13800138000",
            "11010519491231002X",
        ] {
            assert!(product_code(bad).is_err(), "{bad:?}");
        }
        for bad in ["CN/SH", "CN.SH", "CN SH"] {
            assert!(region_code(bad).is_err(), "{bad:?}");
        }
        assert!(
            region_code("CN/SH")
                .unwrap_err()
                .contains("letters, digits and `-` `_`")
        );
    }

    #[test]
    fn codes_are_bounded() {
        assert!(product_code(&"x".repeat(MAX_PRODUCT_CODE)).is_ok());
        assert_eq!(
            product_code(&"x".repeat(MAX_PRODUCT_CODE + 1)),
            Err(format!("must be at most {MAX_PRODUCT_CODE} characters"))
        );
        assert!(region_code(&"R".repeat(MAX_REGION_CODE + 1)).is_err());
    }

    #[test]
    fn facts_with_nothing_known_are_empty() {
        assert!(ProductFacts::default().is_empty());
        let facts = ProductFacts {
            batch: Some("B7".into()),
            ..Default::default()
        };
        assert!(!facts.is_empty());
    }
}
