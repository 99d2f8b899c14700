//! The one rule of every name and free-text label a resource takes (a group's, a
//! configuration's, a load balancer's, an image's, a launch template's, a package's): not all
//! white space, at most so many characters, and no control character (NUL, a newline, ESC, DEL,
//! C1), so a name can never break a log line, a table or a terminal. Each resource gives its
//! limit; the message names the parameter as the API spells it and never repeats the value
//! given (it may be ten kilobytes of control characters).

use crate::error::CoreError;

/// The most characters of a group's or a configuration's name (ESS).
pub const SHORT: usize = 64;
/// The most characters of a load balancer's, an image's or a launch template's name.
pub const LONG: usize = 128;

/// `text`, given as `parameter`: 1 to `max_chars` characters, not all white space, no control
/// character.
pub fn check(parameter: &str, text: &str, max_chars: usize) -> Result<(), CoreError> {
    if text.trim().is_empty() || text.chars().count() > max_chars || text.chars().any(char::is_control) {
        return Err(CoreError::invalid(
            parameter,
            format!("it must be 1 to {max_chars} characters, not all spaces, without control characters"),
        ));
    }
    Ok(())
}

/// Free text given as `parameter` (a description, a comment): empty or up to `max_chars`
/// characters, with no control character but a line break or a tab.
pub fn check_text(parameter: &str, text: &str, max_chars: usize) -> Result<(), CoreError> {
    let control = |c: char| c.is_control() && c != '\n' && c != '\t';
    if text.chars().count() > max_chars || text.chars().any(control) {
        return Err(CoreError::invalid(
            parameter,
            format!("it must be at most {max_chars} characters, without control characters but line breaks and tabs"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_1_to_n_characters_not_blank_without_control_characters() {
        for good in ["a", "web-1", "Größe", "with space", &"é".repeat(LONG)] {
            assert_eq!(check("LoadBalancerName", good, LONG), Ok(()), "{good:?}");
        }
        let long = "x".repeat(LONG + 1);
        for bad in ["", "  ", "\t", long.as_str(), "a\0b", "a\nb", "a\u{1b}[31m", "a\u{7f}", "a\u{85}"] {
            let error = check("LoadBalancerName", bad, LONG).unwrap_err();
            assert_eq!(error.code(), "InvalidParameter");
            let message = error.to_string();
            assert!(message.contains("LoadBalancerName") && message.contains("128"), "{message}");
        }
        assert!(check("ScalingGroupName", &"x".repeat(SHORT + 1), SHORT).is_err());
    }

    #[test]
    fn free_text_may_be_empty_and_hold_line_breaks_but_no_other_control_character() {
        for good in ["", "two\nlines", "a\ttab", &"é".repeat(256)] {
            assert_eq!(check_text("Description", good, 256), Ok(()), "{good:?}");
        }
        for bad in ["a\0b", "a\u{1b}[31m", "a\u{7f}", "a\rb", &"x".repeat(257)] {
            let message = check_text("Description", bad, 256).unwrap_err().to_string();
            assert!(message.contains("Description") && message.contains("256"), "{message}");
        }
    }
}
