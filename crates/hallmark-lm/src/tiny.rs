//! A tiny random llama model in GGUF, with a byte-level BPE tokenizer in its metadata: for
//! tests that run generation and detection end to end without a download. Its vocabulary is
//! printable ASCII plus a few merges; its text is gibberish, its entropy is controlled by
//! `sharpness`, and it is deterministic in `seed`.

use std::path::Path;

use candle_core::quantized::gguf_file::Value;
use candle_core::quantized::{GgmlDType, QTensor, gguf_file};
use candle_core::{Device, Tensor};

use crate::Error;

const DIM: usize = 64;
const HEADS: usize = 4;
const LAYERS: usize = 2;
const FFN: usize = 128;

/// GPT-2's byte-to-character map (printable bytes stand for themselves).
fn byte_chars() -> Vec<char> {
    let mut out = vec!['\0'; 256];
    let mut n = 0u32;
    for b in 0..256u32 {
        let printable =
            (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
        out[b as usize] = if printable {
            char::from_u32(b).unwrap_or('?')
        } else {
            n += 1;
            char::from_u32(255 + n).unwrap_or('?')
        };
    }
    out
}

struct Rng(u64);

impl Rng {
    fn normal(&mut self) -> f32 {
        // Sum of uniforms: close enough to normal for random weights.
        let mut s = 0.0f32;
        for _ in 0..4 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            s += (z >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
        }
        s * 1.732
    }
}

/// Writes a random tiny model to `path`. `sharpness` scales the output layer: larger means
/// lower-entropy next-token distributions (1.0 is a good default).
///
/// # Errors
/// [`Error::Io`] / [`Error::Model`] if the file cannot be written.
pub fn write_model(path: &Path, seed: u64, sharpness: f32) -> Result<(), Error> {
    let chars = byte_chars();
    // Printable ASCII, space, tab and newline: generated text always decodes to valid UTF-8.
    let mut tokens: Vec<String> = (0u8..=126)
        .filter(|&b| b >= 32 || b == b'\n' || b == b'\t')
        .map(|b| chars[b as usize].to_string())
        .collect();
    let g = chars[b' ' as usize];
    let merge_pairs = [
        (format!("{g}"), "t".to_string()),
        ("h".into(), "e".into()),
        (format!("{g}t"), "he".into()),
        (format!("{g}"), "a".into()),
        ("i".into(), "n".into()),
        ("e".into(), "r".into()),
        (format!("{g}"), "w".into()),
        ("o".into(), "n".into()),
    ];
    let mut merges = vec![];
    for (a, b) in &merge_pairs {
        tokens.push(format!("{a}{b}"));
        merges.push(Value::String(format!("{a} {b}")));
    }
    let vocab = tokens.len();
    let err = |e: candle_core::Error| Error::Model(crate::candle_msg(&e));
    let mut rng = Rng(seed);
    let dev = Device::Cpu;
    let mut mk = |shape: &[usize], scale: f32| -> Result<QTensor, Error> {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| rng.normal() * scale).collect();
        let t = Tensor::from_vec(v, shape, &dev).map_err(err)?;
        QTensor::quantize(&t, GgmlDType::F32).map_err(err)
    };
    let ones = |n: usize| -> Result<QTensor, Error> {
        let t = Tensor::ones(n, candle_core::DType::F32, &Device::Cpu).map_err(err)?;
        QTensor::quantize(&t, GgmlDType::F32).map_err(err)
    };
    let w = 1.0 / (DIM as f32).sqrt();
    let mut tensors: Vec<(String, QTensor)> = vec![
        ("token_embd.weight".into(), mk(&[vocab, DIM], 1.0)?),
        (
            "output.weight".into(),
            mk(&[vocab, DIM], 2.0 * sharpness * w)?,
        ),
        ("output_norm.weight".into(), ones(DIM)?),
    ];
    for l in 0..LAYERS {
        let p = format!("blk.{l}");
        tensors.push((format!("{p}.attn_norm.weight"), ones(DIM)?));
        tensors.push((format!("{p}.ffn_norm.weight"), ones(DIM)?));
        for n in ["attn_q", "attn_k", "attn_v", "attn_output"] {
            tensors.push((format!("{p}.{n}.weight"), mk(&[DIM, DIM], w)?));
        }
        tensors.push((format!("{p}.ffn_gate.weight"), mk(&[FFN, DIM], w)?));
        tensors.push((format!("{p}.ffn_up.weight"), mk(&[FFN, DIM], w)?));
        tensors.push((
            format!("{p}.ffn_down.weight"),
            mk(&[DIM, FFN], 1.0 / (FFN as f32).sqrt())?,
        ));
    }
    let md: Vec<(&str, Value)> = vec![
        ("general.architecture", Value::String("llama".into())),
        (
            "general.name",
            Value::String("hallmark tiny test model".into()),
        ),
        ("llama.context_length", Value::U32(1024)),
        ("llama.embedding_length", Value::U32(DIM as u32)),
        ("llama.block_count", Value::U32(LAYERS as u32)),
        ("llama.feed_forward_length", Value::U32(FFN as u32)),
        ("llama.attention.head_count", Value::U32(HEADS as u32)),
        ("llama.attention.head_count_kv", Value::U32(HEADS as u32)),
        (
            "llama.rope.dimension_count",
            Value::U32((DIM / HEADS) as u32),
        ),
        ("llama.attention.layer_norm_rms_epsilon", Value::F32(1e-5)),
        ("tokenizer.ggml.model", Value::String("gpt2".into())),
        ("tokenizer.ggml.pre", Value::String("smollm".into())),
        (
            "tokenizer.ggml.tokens",
            Value::Array(tokens.iter().map(|t| Value::String(t.clone())).collect()),
        ),
        (
            "tokenizer.ggml.token_type",
            Value::Array(vec![Value::I32(1); vocab]),
        ),
        ("tokenizer.ggml.merges", Value::Array(merges)),
    ];
    let md_refs: Vec<(&str, &Value)> = md.iter().map(|(k, v)| (*k, v)).collect();
    let t_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let mut buf = std::io::Cursor::new(Vec::new());
    gguf_file::write(&mut buf, &md_refs, &t_refs).map_err(err)?;
    std::fs::write(path, buf.into_inner()).map_err(|source| Error::Io {
        what: format!("cannot write {}", path.display()),
        source,
    })
}
