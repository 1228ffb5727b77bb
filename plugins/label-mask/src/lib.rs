//! Post-processing example: a segmentation model's scores to a U8 label mask.
//!
//! Takes one F32 tensor and emits one U8 tensor. Params:
//!
//! | param | default | meaning |
//! | --- | --- | --- |
//! | `input` | the only input | name of the input tensor |
//! | `mode` | `threshold` | `threshold` or `argmax` |
//! | `threshold` | 0.5 | `threshold` mode: a position is 1 when its score is above this |
//! | `activation` | `none` | `threshold` mode: `none` compares raw scores, `sigmoid` compares `sigmoid(score)` (without computing it: [`kernels::sigmoid_threshold`]) |
//! | `output` | `mask` | name of the output tensor |
//!
//! `threshold` keeps the input's shape (any rank); NaN scores are 0. `argmax` takes a
//! `[C, ...]` tensor with 1 ≤ C ≤ 256 and labels each position with the channel of its largest
//! score, so the output shape drops axis 0; ties go to the lowest channel and NaN never
//! wins ([`kernels::argmax_channels`]).

use std::borrow::Cow;

use modelvet_plugin_sdk::{kernels, OutputTensor, Params, PluginError, TensorView};

modelvet_plugin_sdk::plugin!(process);

/// The plugin entry point (see the crate docs).
pub fn process<'a>(
    inputs: Vec<TensorView<'a>>,
    params: &Params,
) -> Result<Vec<OutputTensor<'a>>, PluginError> {
    params.allow_only(&["input", "mode", "threshold", "activation", "output"])?;
    let mode = params.str_or("mode", "threshold")?;
    let output = params.str_or("output", "mask")?.to_owned();
    let input = match params.str_opt("input")? {
        Some(name) => modelvet_plugin_sdk::take_input(inputs, name)?,
        None => modelvet_plugin_sdk::single_input(inputs)?,
    };
    let scores: Cow<'_, [f32]> = match input.as_f32() {
        Some(aligned) => Cow::Borrowed(aligned),
        None => Cow::Owned(input.to_f32_vec().ok_or_else(|| {
            PluginError::input(format!(
                "input `{}` is {}, expected F32",
                input.name().escape_debug(),
                input.dtype()
            ))
        })?),
    };
    let shape = input.shape();
    let mask = match mode {
        "threshold" => {
            let t = params.f32_or("threshold", 0.5)?;
            let mut mask = vec![0u8; scores.len()];
            match params.str_or("activation", "none")? {
                "none" => kernels::threshold(&scores, &mut mask, t)?,
                "sigmoid" => kernels::sigmoid_threshold(&scores, &mut mask, t)?,
                other => {
                    return Err(PluginError::params(format!(
                        "param `activation` = `{}` must be `none` or `sigmoid`",
                        other.escape_debug()
                    )))
                }
            }
            OutputTensor::from_u8(output, shape.to_vec(), mask)?
        }
        "argmax" => {
            for only_threshold in ["threshold", "activation"] {
                if params.get(only_threshold).is_some() {
                    return Err(PluginError::params(format!(
                        "param `{only_threshold}` applies to mode `threshold` only"
                    )));
                }
            }
            let Some((&channels, rest)) = shape.split_first() else {
                return Err(PluginError::input(
                    "mode `argmax` needs a tensor of rank >= 1 ([C, ...]), got a scalar",
                ));
            };
            let channels = usize::try_from(channels)
                .ok()
                .filter(|c| (1..=256).contains(c))
                .ok_or_else(|| {
                    PluginError::input(format!(
                        "mode `argmax` takes 1 to 256 channels on axis 0, got `{channels}`"
                    ))
                })?;
            let plane = scores.len() / channels;
            let mut labels = vec![0u8; plane];
            kernels::argmax_channels(&scores, channels, plane, &mut labels)?;
            OutputTensor::from_u8(output, rest.to_vec(), labels)?
        }
        other => {
            return Err(PluginError::params(format!(
                "param `mode` = `{}` must be `threshold` or `argmax`",
                other.escape_debug()
            )))
        }
    };
    Ok(vec![mask])
}

#[cfg(test)]
mod tests {
    use modelvet_plugin_sdk::DType;

    use super::*;

    fn run(
        params: &str,
        shape: &[u64],
        values: &[f32],
    ) -> Result<(Vec<u64>, Vec<u8>, String), PluginError> {
        let mut bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let view = TensorView::new("logits", DType::F32, shape.to_vec(), &mut bytes)?;
        let outputs = modelvet_plugin_sdk::run(process, vec![view], params.as_bytes())?;
        let out = &outputs[0];
        assert_eq!(out.dtype(), DType::U8);
        Ok((
            out.shape().to_vec(),
            out.bytes().to_vec(),
            out.name().to_owned(),
        ))
    }

    const NAN: f32 = f32::NAN;

    #[test]
    fn threshold_keeps_the_shape() {
        let values = [0.2, 0.5, 0.7, NAN, 1.0, -3.0];
        let (shape, mask, name) = run("{}", &[1, 2, 3], &values).unwrap();
        assert_eq!(
            (shape.as_slice(), mask.as_slice(), name.as_str()),
            (&[1, 2, 3][..], &[0, 0, 1, 0, 1, 0][..], "mask")
        );
        let (_, mask, _) = run(r#"{"threshold": 0.6, "output": "m"}"#, &[6], &values).unwrap();
        assert_eq!(mask, [0, 0, 1, 0, 1, 0]);
        // sigmoid(x) > 0.5 iff x > 0; sigmoid(x) > 0.731 iff x > ~1.0.
        let (_, mask, _) = run(r#"{"activation": "sigmoid"}"#, &[6], &values).unwrap();
        assert_eq!(mask, [1, 1, 1, 0, 1, 0]);
        let (_, mask, _) = run(
            r#"{"activation": "sigmoid", "threshold": 0.75}"#,
            &[6],
            &values,
        )
        .unwrap();
        assert_eq!(mask, [0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn argmax_drops_axis_zero() {
        let values = [0.1, 0.9, NAN, 0.5, 0.3, 0.4, 0.5, 0.5, 0.2, 0.2];
        let (shape, mask, _) = run(r#"{"mode": "argmax"}"#, &[2, 1, 5], &values).unwrap();
        assert_eq!(shape, [1, 5]);
        assert_eq!(mask, [1, 0, 1, 0, 0]);
        let (shape, mask, _) = run(r#"{"mode": "argmax"}"#, &[3], &[1.0, 3.0, 2.0]).unwrap();
        assert_eq!((shape.len(), mask.as_slice()), (0, &[1][..]));
    }

    #[test]
    fn bad_params_and_shapes_are_errors() {
        for (params, shape, message) in [
            (
                r#"{"mode": "softmax"}"#,
                &[1u64][..],
                "invalid params: param `mode` = `softmax` must be `threshold` or `argmax`",
            ),
            (
                r#"{"activation": "relu"}"#,
                &[1],
                "invalid params: param `activation` = `relu` must be `none` or `sigmoid`",
            ),
            (
                r#"{"mode": "argmax", "threshold": 0.2}"#,
                &[1],
                "invalid params: param `threshold` applies to mode `threshold` only",
            ),
            (
                r#"{"mode": "argmax"}"#,
                &[],
                "invalid input: mode `argmax` needs a tensor of rank >= 1 ([C, ...]), got a scalar",
            ),
            (
                r#"{"threshold": "high"}"#,
                &[1],
                "invalid params: param `threshold` must be a number, got a string",
            ),
        ] {
            assert_eq!(
                run(params, shape, &[0.0]).unwrap_err().to_string(),
                message,
                "{params}"
            );
        }
        let err = run(r#"{"mode": "argmax"}"#, &[257, 1], &[0.0; 257]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid input: mode `argmax` takes 1 to 256 channels on axis 0, got `257`"
        );
        let err = run(r#"{"mode": "argmax"}"#, &[0, 3], &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid input: mode `argmax` takes 1 to 256 channels on axis 0, got `0`"
        );
    }
}
