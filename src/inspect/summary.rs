//! What a model file holds, without its weights: the network layer by layer with its
//! parameter counts (Keras's `model.summary()`), every feature's encoding, the target, the
//! training data and settings, and the metrics (LightGBM's model dump). `mlp info` prints
//! it; `mlp info --json` gives it as one JSON object.
//!
//! The features, target, settings and metrics are the model file's own records, so a field
//! added to them appears here without a change.

use serde_json::{Value, json};

use crate::tabular::model::{LayerRecord, ModelFile};

/// One layer as the summary shows it: its name, its output width and its parameters.
fn layer(record: &LayerRecord, width: &mut usize) -> Value {
    let (name, parameters) = match record {
        LayerRecord::Linear {
            inputs, outputs, ..
        } => {
            *width = *outputs;
            (
                format!("Linear({inputs} → {outputs})"),
                inputs * outputs + outputs,
            )
        }
        LayerRecord::Relu => ("ReLU".into(), 0),
        LayerRecord::Sigmoid => ("Sigmoid".into(), 0),
        LayerRecord::Tanh => ("Tanh".into(), 0),
        LayerRecord::Dropout { rate } => (format!("Dropout({rate})"), 0),
    };
    json!({ "layer": name, "outputs": *width, "parameters": parameters })
}

/// `record` as JSON, its `f32` numbers as the model file writes them (`0.001`, not
/// `0.0010000000474974513`).
fn as_json(record: &impl serde::Serialize) -> Value {
    let text = serde_json::to_vec(record).expect("a model record is JSON");
    serde_json::from_slice(&text).expect("JSON reads back")
}

/// The summary of `file` as one JSON object: `format`, `version`, `task`, `networks` (1, or
/// the k-fold ensemble's size), `layers` (`layer`, `outputs`, `parameters` each),
/// `parameters` (`per_network`, `total`), `inputs`, `features` (each the model file's
/// record plus its `inputs`), `target`, `training` (the record without the per-epoch
/// history and settings), `settings`, `metrics`.
pub fn summary(file: &ModelFile) -> Value {
    let mut width = file.encoding.input_width();
    let layers: Vec<Value> = file.layers.iter().map(|l| layer(l, &mut width)).collect();
    let per_network: u64 = (layers.iter())
        .map(|l| l["parameters"].as_u64().unwrap_or(0))
        .sum();
    let networks = 1 + file.ensemble.len();
    let features: Vec<Value> = (file.encoding.features.iter())
        .map(|f| {
            let mut record = as_json(f);
            record["inputs"] = json!(f.width());
            record
        })
        .collect();
    let mut training = as_json(&file.training);
    if let Some(fields) = training.as_object_mut() {
        fields.remove("history");
        fields.remove("config");
    }
    json!({
        "format": file.format,
        "version": file.version,
        "task": file.task,
        "networks": networks,
        "layers": layers,
        "parameters": { "per_network": per_network, "total": per_network * networks as u64 },
        "inputs": file.encoding.input_width(),
        "features": features,
        "target": as_json(&file.encoding.target),
        "training": training,
        "settings": as_json(&file.training.config),
        "metrics": as_json(&file.metrics),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tabular::model::Model;

    #[test]
    fn the_corpus_control_model_is_summarised_with_its_parameter_counts() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/corpus/models/valid.json"
        );
        let model = Model::load(path.as_ref()).unwrap();
        let s = summary(&model.file);
        let layers = s["layers"].as_array().unwrap();
        let inputs = s["inputs"].as_u64().unwrap() as usize;
        // Every linear layer's parameters are inputs × outputs + outputs, and the total
        // is their sum.
        let mut width = inputs;
        let mut total = 0;
        for l in layers {
            let outputs = l["outputs"].as_u64().unwrap() as usize;
            let parameters = l["parameters"].as_u64().unwrap() as usize;
            if l["layer"].as_str().unwrap().starts_with("Linear") {
                assert_eq!(parameters, width * outputs + outputs);
                assert_eq!(l["layer"], format!("Linear({width} → {outputs})"));
            } else {
                assert_eq!((parameters, outputs), (0, width));
            }
            width = outputs;
            total += parameters;
        }
        assert_eq!(s["parameters"]["per_network"], total);
        assert_eq!(s["networks"], 1);
        assert_eq!(s["target"]["labels"], json!(["no", "yes"]));
        let names: Vec<&str> = (s["features"].as_array().unwrap().iter())
            .map(|f| f["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["x", "age", "plan"]);
        assert_eq!(s["features"][2]["inputs"], 3);
        assert!(s["training"].get("history").is_none());
    }
}
