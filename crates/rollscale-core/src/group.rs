//! The values of a scaling group and of a scaling configuration, checked: names, sizes, the
//! drain time. This is the one place their limits live: the engine's create and modify call
//! these for every caller (the RPC API, the REST API, the CLI), and the APIs only parse (a
//! number is a number, a list a list). A group's health check settings are checked in
//! [`crate::health`] (`check_types`, `check_grace_period`).
//!
//! Messages name the parameter as ESS spells it and never repeat the value given (it may be
//! ten kilobytes of control characters).

use crate::error::CoreError;

/// The most characters a name takes (a group's, a configuration's).
pub const MAX_NAME_CHARS: usize = crate::names::SHORT;
/// The most instances a group may have: the most its `MaxSize` may be.
pub const MAX_SIZE: u32 = 10_000;
/// The longest drain time of a group, in seconds (`DrainTimeout`).
pub const MAX_DRAIN_TIMEOUT_S: u32 = 3600;

/// A name given under `parameter` (`ScalingGroupName`, `ScalingConfigurationName`,
/// `InstanceType`, `RegionId`): 1 to [`MAX_NAME_CHARS`] characters, not all white space, and
/// no control character (NUL, a newline, ESC, DEL, …).
pub fn check_name(parameter: &str, name: &str) -> Result<(), CoreError> {
    crate::names::check(parameter, name, MAX_NAME_CHARS)
}

/// A group's name (`ScalingGroupName`).
pub fn check_group_name(name: &str) -> Result<(), CoreError> {
    check_name("ScalingGroupName", name)
}

/// A configuration's name (`ScalingConfigurationName`).
pub fn check_configuration_name(name: &str) -> Result<(), CoreError> {
    check_name("ScalingConfigurationName", name)
}

/// A group's drain time in seconds (`DrainTimeout`): 0 to [`MAX_DRAIN_TIMEOUT_S`].
pub fn check_drain_timeout(seconds: u32) -> Result<u32, CoreError> {
    match seconds <= MAX_DRAIN_TIMEOUT_S {
        true => Ok(seconds),
        false => Err(CoreError::invalid("DrainTimeout", format!("it must be 0 to {MAX_DRAIN_TIMEOUT_S} seconds"))),
    }
}

/// A group's sizes: `min <= desired <= max <= MAX_SIZE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sizes {
    pub min: u32,
    pub max: u32,
    pub desired: u32,
}

impl Sizes {
    /// A new group's sizes; the desired capacity is `min` when not given.
    pub fn new(min: u32, max: u32, desired: Option<u32>) -> Result<Sizes, CoreError> {
        Sizes::checked(min, max, desired.unwrap_or(min))
    }

    /// The sizes after a change: the ones given replace the current ones. A desired capacity
    /// that is not given follows the new bounds (clamped into them); one that is given must lie
    /// within them.
    pub fn change(self, min: Option<u32>, max: Option<u32>, desired: Option<u32>) -> Result<Sizes, CoreError> {
        let (min, max) = (min.unwrap_or(self.min), max.unwrap_or(self.max));
        check_bounds(min, max)?;
        let desired = desired.unwrap_or_else(|| self.desired.clamp(min, max));
        Sizes::checked(min, max, desired)
    }

    fn checked(min: u32, max: u32, desired: u32) -> Result<Sizes, CoreError> {
        check_bounds(min, max)?;
        if desired < min || desired > max {
            return Err(CoreError::invalid(
                "DesiredCapacity",
                format!("it must be from MinSize ({min}) to MaxSize ({max})"),
            ));
        }
        Ok(Sizes { min, max, desired })
    }
}

fn check_bounds(min: u32, max: u32) -> Result<(), CoreError> {
    if max > MAX_SIZE {
        return Err(CoreError::invalid("MaxSize", format!("it must be at most {MAX_SIZE}")));
    }
    if min > max {
        return Err(CoreError::invalid("MinSize", format!("it must not be more than MaxSize ({max})")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_1_to_64_characters_without_control_characters() {
        for good in ["a", "web-1", "Größe", &"x".repeat(64), &"é".repeat(64), "with space"] {
            assert_eq!(check_group_name(good), Ok(()), "{good:?}");
        }
        let long = "x".repeat(65);
        let huge = "a".repeat(10 * 1024);
        for bad in ["", "   ", "\t", long.as_str(), huge.as_str(), "a\0b", "a\nb", "a\u{1b}[31m", "a\u{7f}", "a\u{85}"]
        {
            let error = check_configuration_name(bad).unwrap_err();
            assert_eq!(error.code(), "InvalidParameter");
            let message = error.to_string();
            assert!(message.contains("ScalingConfigurationName"), "{message}");
            assert!(message.len() < 200, "the message does not repeat the value: {message}");
        }
    }

    #[test]
    fn sizes_lie_within_each_other_and_the_limit() {
        assert_eq!(Sizes::new(1, 3, None), Ok(Sizes { min: 1, max: 3, desired: 1 }));
        assert_eq!(Sizes::new(0, MAX_SIZE, Some(MAX_SIZE)), Ok(Sizes { min: 0, max: MAX_SIZE, desired: MAX_SIZE }));
        let refused = |result: Result<Sizes, CoreError>, parameter: &str| {
            let error = result.unwrap_err();
            assert!(error.to_string().contains(parameter), "{error} names {parameter}");
            assert_eq!(error.code(), "InvalidParameter");
        };
        refused(Sizes::new(0, MAX_SIZE + 1, None), "MaxSize");
        refused(Sizes::new(MAX_SIZE + 1, MAX_SIZE + 1, None), "MaxSize");
        refused(Sizes::new(5, 1, None), "MinSize");
        refused(Sizes::new(1, 3, Some(4)), "DesiredCapacity");
        refused(Sizes::new(2, 3, Some(1)), "DesiredCapacity");
        refused(Sizes::new(0, u32::MAX, None), "MaxSize");
    }

    #[test]
    fn a_change_keeps_an_unnamed_desired_capacity_within_the_new_bounds() {
        let now = Sizes { min: 1, max: 5, desired: 4 };
        assert_eq!(now.change(None, Some(3), None), Ok(Sizes { min: 1, max: 3, desired: 3 }));
        assert_eq!(now.change(Some(5), None, None), Ok(Sizes { min: 5, max: 5, desired: 5 }));
        assert_eq!(now.change(None, None, Some(2)), Ok(Sizes { min: 1, max: 5, desired: 2 }));
        assert!(now.change(None, Some(3), Some(4)).is_err(), "a given one must fit");
        assert!(now.change(Some(6), None, None).is_err(), "MinSize over MaxSize");
        assert!(now.change(None, Some(MAX_SIZE + 1), None).is_err());
    }

    #[test]
    fn drain_time_is_0_to_3600_seconds() {
        assert_eq!(check_drain_timeout(0), Ok(0));
        assert_eq!(check_drain_timeout(3600), Ok(3600));
        let error = check_drain_timeout(3601).unwrap_err();
        assert_eq!(error.code(), "InvalidParameter");
        assert!(error.to_string().contains("DrainTimeout"));
    }
}
