//! A small VGG16 weights file for tests that need the model but not its values: only the
//! `features.*` tensors (no classifier), with deterministic weights scaled by the fan-in.
//! Also the layout of VGG16's convolutions, shared with the parity test.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};

/// (index in `features`, input channels, output channels) of each 3×3 convolution.
pub const CONVS: [(usize, usize, usize); 13] = [
    (0, 3, 64),
    (2, 64, 64),
    (5, 64, 128),
    (7, 128, 128),
    (10, 128, 256),
    (12, 256, 256),
    (14, 256, 256),
    (17, 256, 512),
    (19, 512, 512),
    (21, 512, 512),
    (24, 512, 512),
    (26, 512, 512),
    (28, 512, 512),
];

pub fn write_features_only(path: &Path) {
    let mut tensors = HashMap::new();
    for (index, cin, cout) in CONVS {
        let scale = (6.0 / (cin * 9) as f32).sqrt();
        let w: Vec<f32> = (0..cout * cin * 9)
            .map(|i| ((i * 2654435761usize % 1000) as f32 / 1000.0 - 0.5) * scale)
            .collect();
        tensors.insert(
            format!("features.{index}.weight"),
            Tensor::from_vec(w, (cout, cin, 3, 3), &Device::Cpu).unwrap(),
        );
        tensors.insert(
            format!("features.{index}.bias"),
            Tensor::zeros(cout, DType::F32, &Device::Cpu).unwrap(),
        );
    }
    candle_core::safetensors::save(&tensors, path).unwrap();
}
