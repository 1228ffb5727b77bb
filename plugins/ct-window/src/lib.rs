//! Pre-processing example: CT windowing, scaled to [0, 1].
//!
//! Takes one F32 tensor in Hounsfield units and emits `clamp((x - (center - width/2)) /
//! width, 0, 1)` with the same shape ([`kernels::window_level`]; NaN becomes 0). Params:
//!
//! | param | default | meaning |
//! | --- | --- | --- |
//! | `input` | the only input | name of the input tensor |
//! | `center` | 40 | window centre, HU (finite) |
//! | `width` | 400 | window width, HU (finite, > 0) |
//! | `output` | `image` | name of the output tensor |
//!
//! The soft-tissue default maps −160 HU to 0 and 240 HU to 1. The input buffer is guest
//! memory from `modelvet_alloc`, so the window runs in place and is emitted from the same
//! bytes: a 64 MiB volume costs no second 64 MiB.

use modelvet_plugin_sdk::{kernels, Float, OutputTensor, Params, PluginError, TensorView};

modelvet_plugin_sdk::plugin!(process);

/// The plugin entry point (see the crate docs).
pub fn process<'a>(
    inputs: Vec<TensorView<'a>>,
    params: &Params,
) -> Result<Vec<OutputTensor<'a>>, PluginError> {
    params.allow_only(&["input", "center", "width", "output"])?;
    let center = params.f32_or("center", 40.0)?;
    let width = params.f32_or("width", 400.0)?;
    if !(width.is_finite() && width > 0.0) {
        return Err(PluginError::params(format!(
            "param `width` = `{}` must be > 0",
            Float(width)
        )));
    }
    if !(center - width * 0.5).is_finite() {
        return Err(PluginError::params(format!(
            "window `center` = `{}`, `width` = `{}` overflows f32",
            Float(center),
            Float(width)
        )));
    }
    let output = params.str_or("output", "image")?.to_owned();
    let input = match params.str_opt("input")? {
        Some(name) => modelvet_plugin_sdk::take_input(inputs, name)?,
        None => modelvet_plugin_sdk::single_input(inputs)?,
    };
    let shape = input.shape().to_vec();
    let name = input.name().to_owned();
    match input.into_f32_mut() {
        Ok(data) => {
            kernels::window_level_in_place(data, center, width)?;
            OutputTensor::reuse_f32(output, shape, data)
        }
        Err(input) => {
            let data = input.to_f32_vec().ok_or_else(|| {
                PluginError::input(format!(
                    "input `{}` is {}, expected F32",
                    name.escape_debug(),
                    input.dtype()
                ))
            })?;
            let mut out = vec![0.0; data.len()];
            kernels::window_level(&data, &mut out, center, width)?;
            OutputTensor::from_f32(output, shape, out)
        }
    }
    .map(|out| vec![out])
}

#[cfg(test)]
mod tests {
    use modelvet_plugin_sdk::DType;

    use super::*;

    fn run(params: &str, values: &[f32]) -> Result<(Vec<u64>, Vec<f32>, String), PluginError> {
        let mut bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let view = TensorView::new("ct", DType::F32, vec![values.len() as u64], &mut bytes)?;
        let outputs = modelvet_plugin_sdk::run(process, vec![view], params.as_bytes())?;
        let out = &outputs[0];
        Ok((
            out.shape().to_vec(),
            out.as_f32().unwrap().to_vec(),
            out.name().to_owned(),
        ))
    }

    #[test]
    fn defaults_are_the_soft_tissue_window() {
        let (shape, values, name) = run("{}", &[-1000.0, -160.0, 40.0, 240.0, f32::NAN]).unwrap();
        assert_eq!(shape, [5]);
        assert_eq!(values, [0.0, 0.0, 0.5, 1.0, 0.0]);
        assert_eq!(name, "image");
    }

    #[test]
    fn params_choose_window_names_and_are_checked() {
        let (_, values, name) = run(
            r#"{"center": 400, "width": 1800, "output": "bone", "input": "ct"}"#,
            &[400.0],
        )
        .unwrap();
        assert_eq!((values[0], name.as_str()), (0.5, "bone"));
        for (params, message) in [
            (r#"{"width": 0}"#, "invalid params: param `width` = `0` must be > 0"),
            (r#"{"width": -5}"#, "invalid params: param `width` = `-5` must be > 0"),
            (r#"{"centre": 1}"#, "invalid params: unknown param `centre` (known: `input`, `center`, `width`, `output`)"),
            (r#"{"center": "40"}"#, "invalid params: param `center` must be a number, got a string"),
            (r#"{"center": -3e38, "width": 3e38}"#, "invalid params: window `center` = `-3.00000001e38`, `width` = `3.00000001e38` overflows f32"),
            (r#"{"input": "nope"}"#, "invalid input: no input tensor named `nope` (inputs: `ct`)"),
            (r#"{"output": ""}"#, "invalid output: tensor name `` must be 1 to 255 bytes, is `0`"),
        ] {
            assert_eq!(run(params, &[1.0]).unwrap_err().to_string(), message, "{params}");
        }
    }

    #[test]
    fn refuses_other_dtypes() {
        let mut bytes = vec![0u8; 4];
        let view = TensorView::new("m", DType::U8, vec![4], &mut bytes).unwrap();
        let err = modelvet_plugin_sdk::run(process, vec![view], b"{}").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid input: input `m` is U8, expected F32"
        );
        assert_eq!(err.code(), 3);
    }
}
