//! The errors a plugin returns, and the non-zero codes `modelvet_process` maps them to.

use std::fmt;

/// Why a plugin run failed. `modelvet_process` logs the message at error level and returns
/// [`PluginError::code`]; the host reports it as `plugin-failed` with that code and line.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum PluginError {
    /// The params are not a JSON object, or a param is missing, mistyped or out of range.
    /// Code 2.
    Params { message: String },
    /// The inputs are not what the plugin takes (count, name, dtype, shape). Code 3.
    Input { message: String },
    /// The plugin's own outputs break the ABI (name, count, size). Code 4.
    Output { message: String },
    /// The host broke the ABI contract (descriptor out of range, unknown dtype). Code 5.
    Abi { message: String },
    /// A kernel refused its arguments. Code 6.
    Kernel(KernelError),
    /// The plugin's own failure, with its own non-zero code (0 becomes 1).
    Failed { code: i32, message: String },
}

impl PluginError {
    pub fn params(message: impl Into<String>) -> Self {
        PluginError::Params {
            message: message.into(),
        }
    }

    pub fn input(message: impl Into<String>) -> Self {
        PluginError::Input {
            message: message.into(),
        }
    }

    pub fn output(message: impl Into<String>) -> Self {
        PluginError::Output {
            message: message.into(),
        }
    }

    pub fn abi(message: impl Into<String>) -> Self {
        PluginError::Abi {
            message: message.into(),
        }
    }

    pub fn failed(code: i32, message: impl Into<String>) -> Self {
        PluginError::Failed {
            code,
            message: message.into(),
        }
    }

    /// The non-zero value `modelvet_process` returns for this error.
    pub fn code(&self) -> i32 {
        match self {
            PluginError::Params { .. } => 2,
            PluginError::Input { .. } => 3,
            PluginError::Output { .. } => 4,
            PluginError::Abi { .. } => 5,
            PluginError::Kernel(_) => 6,
            PluginError::Failed { code: 0, .. } => 1,
            PluginError::Failed { code, .. } => *code,
        }
    }
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PluginError::Params { message } => write!(f, "invalid params: {message}"),
            PluginError::Input { message } => write!(f, "invalid input: {message}"),
            PluginError::Output { message } => write!(f, "invalid output: {message}"),
            PluginError::Abi { message } => write!(f, "abi violation by the host: {message}"),
            PluginError::Kernel(err) => write!(f, "kernel: {err}"),
            PluginError::Failed { message, .. } => f.write_str(message),
        }
    }
}

impl std::error::Error for PluginError {}

impl From<KernelError> for PluginError {
    fn from(err: KernelError) -> Self {
        PluginError::Kernel(err)
    }
}

/// Why a kernel refused its arguments. Kernels never panic.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum KernelError {
    /// The output slice is not as long as the kernel needs.
    LengthMismatch { expected: usize, actual: usize },
    /// A window width that is not finite and > 0, or a centre that is not finite.
    InvalidWindow { center: f32, width: f32 },
    /// A z-score standard deviation that is not finite and > 0, or a mean that is not finite.
    InvalidScale { mean: f32, std: f32 },
    /// A NaN threshold.
    InvalidThreshold { threshold: f32 },
    /// `argmax_channels` takes 1 to 256 channels.
    InvalidChannels { channels: usize },
}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KernelError::LengthMismatch { expected, actual } => {
                write!(
                    f,
                    "length mismatch: expected `{expected}` elements, got `{actual}`"
                )
            }
            KernelError::InvalidWindow { center, width } => write!(
                f,
                "invalid window: center `{}` must be finite and width `{}` finite and > 0",
                Float(*center),
                Float(*width)
            ),
            KernelError::InvalidScale { mean, std } => write!(
                f,
                "invalid z-score: mean `{}` must be finite and std `{}` finite and > 0",
                Float(*mean),
                Float(*std)
            ),
            KernelError::InvalidThreshold { threshold } => {
                write!(
                    f,
                    "invalid threshold `{}`: must not be NaN",
                    Float(*threshold)
                )
            }
            KernelError::InvalidChannels { channels } => {
                write!(f, "invalid channel count `{channels}`: must be 1 to 256")
            }
        }
    }
}

impl std::error::Error for KernelError {}

/// Displays a float in messages without Rust's float formatting, which would add about
/// 25 KiB to every plugin: integers (below 1e15) print exactly, other values with 9
/// significant digits (the last one may differ from `{}` formatting), plain between 1e-5
/// and 1e9 and in `e` notation outside.
#[derive(Clone, Copy, Debug)]
pub struct Float<T>(pub T);

impl fmt::Display for Float<f32> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Float(f64::from(self.0)).fmt(f)
    }
}

impl fmt::Display for Float<f64> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let x = self.0;
        if x.is_nan() {
            return f.write_str("NaN");
        }
        if x.is_infinite() {
            return f.write_str(if x > 0.0 { "inf" } else { "-inf" });
        }
        if x.abs() < 1e15 && (x as i64) as f64 == x {
            return write!(
                f,
                "{}{}",
                if x == 0.0 && x.is_sign_negative() {
                    "-"
                } else {
                    ""
                },
                x as i64
            );
        }
        // Scale |x| into [1e8, 1e9) and keep the exponent: at most ~330 steps for f64.
        let mut v = x.abs();
        let mut exp: i32 = 8;
        while v >= 1e9 {
            v /= 10.0;
            exp += 1;
        }
        while v < 1e8 {
            v *= 10.0;
            exp -= 1;
        }
        let mut digits = (v + 0.5) as u64;
        if digits >= 1_000_000_000 {
            digits /= 10;
            exp += 1;
        }
        let text = digits.to_string();
        let text = text.trim_end_matches('0');
        let sign = if x < 0.0 { "-" } else { "" };
        let (head, tail) = text.split_at(1);
        if (-5..9).contains(&exp) {
            if exp < 0 {
                let zeros = "0".repeat((-exp - 1) as usize);
                write!(f, "{sign}0.{zeros}{text}")
            } else {
                let point = (exp + 1) as usize;
                let int = text.get(..point.min(text.len())).unwrap_or(text);
                let frac = text.get(point.min(text.len())..).unwrap_or("");
                let pad = "0".repeat(point.saturating_sub(text.len()));
                if frac.is_empty() {
                    write!(f, "{sign}{int}{pad}")
                } else {
                    write!(f, "{sign}{int}.{frac}")
                }
            }
        } else if tail.is_empty() {
            write!(f, "{sign}{head}e{exp}")
        } else {
            write!(f, "{sign}{head}.{tail}e{exp}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_non_zero_and_distinct() {
        let errors = [
            PluginError::params("x"),
            PluginError::input("x"),
            PluginError::output("x"),
            PluginError::abi("x"),
            PluginError::Kernel(KernelError::InvalidChannels { channels: 0 }),
        ];
        let mut codes: Vec<i32> = errors.iter().map(PluginError::code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes, vec![2, 3, 4, 5, 6]);
        assert_eq!(PluginError::failed(0, "x").code(), 1);
        assert_eq!(PluginError::failed(-7, "x").code(), -7);
    }

    #[test]
    fn floats_display_without_float_formatting() {
        for (x, text) in [
            (0.0, "0"),
            (-0.0, "-0"),
            (40.0, "40"),
            (-1000.0, "-1000"),
            (0.5, "0.5"),
            (-0.25, "-0.25"),
            (0.1, "0.1"),
            (1.5e-7, "1.5e-7"),
            (0.00012, "0.00012"),
            (123.456, "123.456"),
            (3e38, "3e38"),
            (-3.4028235e38, "-3.4028235e38"),
            (1e15, "1e15"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (5e-324, "4.94065646e-324"),
            (123456789.5, "123456790"),
        ] {
            assert_eq!(Float(x).to_string(), text, "{x}");
        }
        assert_eq!(Float(0.1f32).to_string(), "0.100000001");
        assert_eq!(Float(f32::MAX).to_string(), "3.40282347e38");
    }

    #[test]
    fn messages_name_values() {
        let err = PluginError::from(KernelError::InvalidWindow {
            center: 40.0,
            width: -1.0,
        });
        assert_eq!(
            err.to_string(),
            "kernel: invalid window: center `40` must be finite and width `-1` finite and > 0"
        );
    }
}
