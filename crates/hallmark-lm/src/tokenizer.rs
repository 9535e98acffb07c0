//! Tokenizers: from a `tokenizer.json` or rebuilt from a GGUF file's metadata.

use std::path::Path;

use candle_core::quantized::gguf_file;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{AddedToken, PreTokenizerWrapper, Tokenizer};

use crate::Error;

/// The most tokens (and merges) a GGUF tokenizer may declare: real vocabularies hold up to a
/// few hundred thousand.
const MAX_VOCAB: usize = 4 << 20;

/// About how many bytes of text [`TextTokenizer::encode`] tokenizes at once.
pub const ENCODE_CHUNK: usize = 256 << 10;

/// Where the piece of `text` starting at `start` ends: the last single space or newline
/// between two non-whitespace characters within `size` bytes, else a character boundary.
fn chunk_end(text: &str, start: usize, size: usize) -> usize {
    if text.len() - start <= size {
        return text.len();
    }
    let b = text.as_bytes();
    let limit = start + size;
    // Search back from the limit for " x" or "\n x" with a non-space before (ASCII bytes,
    // so the cut is always a character boundary).
    let mut p = limit;
    while p > start {
        if (b[p] == b' ' || b[p] == b'\n')
            && !b[p - 1].is_ascii_whitespace()
            && p + 1 < b.len()
            && !b[p + 1].is_ascii_whitespace()
        {
            return p;
        }
        p -= 1;
    }
    let mut p = limit;
    while !text.is_char_boundary(p) {
        p -= 1;
    }
    p
}

/// A tokenizer plus what generation and detection need to know about it.
pub struct TextTokenizer {
    inner: Tokenizer,
    eos: Vec<u32>,
    chatml: bool,
    /// The model's chat template (Jinja, GGUF `tokenizer.chat_template`), when it has one.
    chat_template: Option<String>,
    bos_token: String,
    eos_token: String,
}

impl std::fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextTokenizer")
            .field("vocab", &self.vocab_size())
            .field("eos", &self.eos)
            .field("chatml", &self.chatml)
            .finish()
    }
}

/// Token ids of a text with the character range each token covers.
#[derive(Clone, Debug, Default)]
pub struct Encoded {
    /// Token ids.
    pub ids: Vec<u32>,
    /// Character (not byte) offsets `[start, end)` into the text, one per token.
    pub offsets: Vec<(usize, usize)>,
}

impl TextTokenizer {
    /// Loads a tokenizer from `path`: a `tokenizer.json`, or a `.gguf` model whose metadata holds
    /// a gpt2-style BPE (`tokenizer.ggml.*`).
    ///
    /// # Errors
    /// [`Error::Tokenizer`] when the file is neither, or its tokenizer cannot be built.
    pub fn from_file(path: &Path) -> Result<Self, Error> {
        let mut f = std::fs::File::open(path).map_err(|source| Error::Io {
            what: format!("cannot open {}", path.display()),
            source,
        })?;
        let mut magic = [0u8; 4];
        let is_gguf = std::io::Read::read_exact(&mut f, &mut magic).is_ok() && &magic == b"GGUF";
        if is_gguf {
            let mut f =
                std::io::BufReader::new(std::fs::File::open(path).map_err(|source| Error::Io {
                    what: format!("cannot open {}", path.display()),
                    source,
                })?);
            let ct = gguf_file::Content::read(&mut f).map_err(|e| {
                Error::Model(format!(
                    "{}: not a readable GGUF file: {}",
                    path.display(),
                    crate::candle_msg(&e)
                ))
            })?;
            return Self::from_gguf(&ct);
        }
        let inner = Tokenizer::from_file(path).map_err(|e| {
            Error::Tokenizer(format!(
                "{} is neither a GGUF model nor a tokenizer.json: {e}",
                path.display()
            ))
        })?;
        Ok(Self::wrap(inner))
    }

    /// A tokenizer from the text of a `tokenizer.json` (what transformers' fast tokenizers
    /// hold: `tokenizer.backend_tokenizer.to_str()`).
    ///
    /// # Errors
    /// [`Error::Tokenizer`] when the text is not a tokenizer definition.
    pub fn from_json(json: &str) -> Result<Self, Error> {
        let inner: Tokenizer = json
            .parse()
            .map_err(|e| Error::Tokenizer(format!("not a tokenizer.json: {e}")))?;
        Ok(Self::wrap(inner))
    }

    fn wrap(inner: Tokenizer) -> Self {
        let eos = ["<|im_end|>", "<|endoftext|>", "</s>", "<|eot_id|>"]
            .iter()
            .filter_map(|t| inner.token_to_id(t))
            .collect();
        let chatml = inner.token_to_id("<|im_start|>").is_some()
            && inner.token_to_id("<|im_end|>").is_some();
        TextTokenizer {
            inner,
            eos,
            chatml,
            chat_template: None,
            bos_token: String::new(),
            eos_token: String::new(),
        }
    }

    /// Rebuilds the tokenizer stored in a GGUF file's metadata (gpt2 BPE; the "smollm",
    /// "llama-bpe" style pre-tokenizers split digits individually before the byte-level split).
    ///
    /// # Errors
    /// [`Error::Tokenizer`] when the metadata is missing or not a gpt2 BPE.
    pub fn from_gguf(ct: &gguf_file::Content) -> Result<Self, Error> {
        let md = |k: &str| {
            ct.metadata
                .get(k)
                .ok_or_else(|| Error::Tokenizer(format!("GGUF metadata has no {k}")))
        };
        let kind = md("tokenizer.ggml.model")?
            .to_string()
            .map_err(|e| Error::Tokenizer(e.to_string()))?
            .clone();
        if kind != "gpt2" {
            return Err(Error::Tokenizer(format!(
                "GGUF tokenizer model {kind:?} is not supported (gpt2 BPE only); pass a tokenizer.json"
            )));
        }
        let bad = |e: candle_core::Error| Error::Tokenizer(crate::candle_msg(&e));
        let tokens: Vec<String> = md("tokenizer.ggml.tokens")?
            .to_vec()
            .map_err(bad)?
            .iter()
            .map(|v| v.to_string().cloned())
            .collect::<Result<_, _>>()
            .map_err(bad)?;
        let merges: Vec<(String, String)> = md("tokenizer.ggml.merges")?
            .to_vec()
            .map_err(bad)?
            .iter()
            .map(|v| {
                let s = v.to_string().map_err(bad)?;
                s.split_once(' ')
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .ok_or_else(|| Error::Tokenizer(format!("bad merge {s:?}")))
            })
            .collect::<Result<_, _>>()?;
        let types: Vec<i32> = match ct.metadata.get("tokenizer.ggml.token_type") {
            Some(v) => v
                .to_vec()
                .map_err(bad)?
                .iter()
                .map(|t| t.to_i32())
                .collect::<Result<_, _>>()
                .map_err(bad)?,
            None => vec![],
        };
        // Hostile or damaged files: every array is checked against the others and against
        // caps before anything indexes into it.
        if tokens.is_empty() || tokens.len() > MAX_VOCAB {
            return Err(Error::Tokenizer(format!(
                "GGUF tokenizer has {} tokens (expected 1 to {MAX_VOCAB})",
                tokens.len()
            )));
        }
        if merges.len() > MAX_VOCAB {
            return Err(Error::Tokenizer(format!(
                "GGUF tokenizer has {} merges (at most {MAX_VOCAB})",
                merges.len()
            )));
        }
        if !types.is_empty() && types.len() != tokens.len() {
            return Err(Error::Tokenizer(format!(
                "GGUF tokenizer is inconsistent: {} token types for {} tokens",
                types.len(),
                tokens.len()
            )));
        }
        let pre = ct
            .metadata
            .get("tokenizer.ggml.pre")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .unwrap_or_default();
        let vocab: tokenizers::models::bpe::Vocab = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .build()
            .map_err(|e| Error::Tokenizer(format!("cannot build the BPE: {e}")))?;
        let mut tk = Tokenizer::new(bpe);
        let byte_level = ByteLevel::new(false, true, true);
        let pre_tok: PreTokenizerWrapper = if pre == "default" || pre == "gpt2" {
            byte_level.into()
        } else {
            Sequence::new(vec![Digits::new(true).into(), byte_level.into()]).into()
        };
        tk.with_pre_tokenizer(Some(pre_tok));
        tk.with_decoder(Some(ByteLevelDecoder::default()));
        // Control tokens (type 3) are special: matched whole, never split.
        let special: Vec<AddedToken> = types
            .iter()
            .enumerate()
            .zip(&tokens)
            .filter(|((_, t), _)| **t == 3)
            .map(|(_, tok)| AddedToken::from(tok.clone(), true))
            .collect();
        tk.add_special_tokens(special)
            .map_err(|e| Error::Tokenizer(format!("cannot add special tokens: {e}")))?;
        let mut t = Self::wrap(tk);
        t.chat_template = ct
            .metadata
            .get("tokenizer.chat_template")
            .and_then(|v| v.to_string().ok())
            .filter(|s| !s.trim().is_empty())
            .cloned();
        let token = |k: &str| {
            ct.metadata
                .get(k)
                .and_then(|v| v.to_u32().ok())
                .and_then(|i| tokens.get(i as usize))
                .cloned()
                .unwrap_or_default()
        };
        t.bos_token = token("tokenizer.ggml.bos_token_id");
        t.eos_token = token("tokenizer.ggml.eos_token_id");
        Ok(t)
    }

    /// Whether the model has a chat template of its own (GGUF `tokenizer.chat_template`).
    pub fn has_chat_template(&self) -> bool {
        self.chat_template.is_some()
    }

    /// `prompt` as the model expects a user's turn: rendered with its chat template (one user
    /// message, then the assistant's turn opened), else ChatML when the tokenizer has its
    /// tokens, else `None` (a plain completion model).
    ///
    /// # Errors
    /// [`Error::Tokenizer`] when the template does not render (a syntax the engine lacks,
    /// or the template raising an error).
    pub fn chat_prompt(&self, prompt: &str) -> Result<Option<String>, Error> {
        if let Some(t) = &self.chat_template {
            let mut env = minijinja::Environment::new();
            env.add_function(
                "raise_exception",
                |msg: String| -> Result<String, minijinja::Error> {
                    Err(minijinja::Error::new(
                        minijinja::ErrorKind::InvalidOperation,
                        msg,
                    ))
                },
            );
            env.add_template("chat", t).map_err(|e| {
                Error::Tokenizer(format!("the model's chat template does not parse: {e}"))
            })?;
            let out = env
                .get_template("chat")
                .and_then(|tpl| {
                    tpl.render(minijinja::context! {
                        messages => vec![minijinja::context! { role => "user", content => prompt }],
                        add_generation_prompt => true,
                        bos_token => &self.bos_token,
                        eos_token => &self.eos_token,
                    })
                })
                .map_err(|e| {
                    Error::Tokenizer(format!("the model's chat template does not render: {e}"))
                })?;
            return Ok(Some(out));
        }
        if self.chatml {
            return Ok(Some(format!(
                "<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n"
            )));
        }
        Ok(None)
    }

    /// The tokenizer as `tokenizer.json` text (Hugging Face format), e.g. to detect without
    /// the model file at hand.
    ///
    /// # Errors
    /// [`Error::Tokenizer`] if it cannot be serialised.
    pub fn to_json(&self) -> Result<String, Error> {
        self.inner
            .to_string(false)
            .map_err(|e| Error::Tokenizer(e.to_string()))
    }

    /// Vocabulary size including special tokens.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// End-of-text tokens generation stops at.
    pub fn eos(&self) -> &[u32] {
        &self.eos
    }

    /// Whether the tokenizer has ChatML tokens (`<|im_start|>`, `<|im_end|>`).
    pub fn chatml(&self) -> bool {
        self.chatml
    }

    /// Tokenizes `text` without adding special tokens; offsets are in characters.
    ///
    /// # Errors
    /// [`Error::Tokenizer`] if the tokenizer fails.
    ///
    /// Long texts are tokenized in pieces of about [`ENCODE_CHUNK`] bytes, cut where a single
    /// space or newline stands between two other characters: byte-level BPE never merges
    /// across such a boundary (the space starts the next word's token), so the ids are the
    /// same as for the whole text, while the tokenizer's per-token bookkeeping (strings,
    /// offsets, masks: hundreds of bytes per token) exists for one piece at a time. A text
    /// with no such boundary for a whole piece (unspaced scripts such as Chinese) is cut at
    /// a character boundary, which can change the one or two tokens at the cut.
    pub fn encode(&self, text: &str) -> Result<Encoded, Error> {
        let mut ids = Vec::new();
        let mut offsets = Vec::new();
        let mut start = 0usize; // byte offset of the piece
        let mut start_chars = 0usize; // its offset in characters
        while start < text.len() {
            let end = chunk_end(text, start, ENCODE_CHUNK);
            let piece = &text[start..end];
            let enc = self
                .inner
                .encode_char_offsets(piece, false)
                .map_err(|e| Error::Tokenizer(e.to_string()))?;
            ids.extend_from_slice(enc.get_ids());
            offsets.extend(
                enc.get_offsets()
                    .iter()
                    .map(|&(a, b)| (a + start_chars, b + start_chars)),
            );
            start_chars += piece.chars().count();
            start = end;
        }
        Ok(Encoded { ids, offsets })
    }

    /// Tokenizes a prompt that may contain special tokens such as `<|im_start|>`.
    ///
    /// # Errors
    /// [`Error::Tokenizer`] if the tokenizer fails.
    pub fn encode_prompt(&self, text: &str) -> Result<Vec<u32>, Error> {
        let enc = self
            .inner
            .encode(text, true)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Turns ids back into text, dropping special tokens.
    ///
    /// # Errors
    /// [`Error::Tokenizer`] if an id is out of range.
    pub fn decode(&self, ids: &[u32]) -> Result<String, Error> {
        self.inner
            .decode(ids, true)
            .map_err(|e| Error::Tokenizer(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use candle_core::quantized::gguf_file::{Content, Value, VersionedMagic};

    use super::*;

    fn content(tokens: &[&str], types: &[i32]) -> Content {
        let mut metadata = HashMap::new();
        metadata.insert(
            "tokenizer.ggml.model".to_string(),
            Value::String("gpt2".into()),
        );
        metadata.insert(
            "tokenizer.ggml.tokens".to_string(),
            Value::Array(
                tokens
                    .iter()
                    .map(|t| Value::String(t.to_string()))
                    .collect(),
            ),
        );
        metadata.insert("tokenizer.ggml.merges".to_string(), Value::Array(vec![]));
        metadata.insert(
            "tokenizer.ggml.token_type".to_string(),
            Value::Array(types.iter().map(|&t| Value::I32(t)).collect()),
        );
        Content {
            magic: VersionedMagic::GgufV3,
            metadata,
            tensor_infos: HashMap::new(),
            tensor_data_offset: 0,
        }
    }

    #[test]
    fn pieces_end_at_single_spaces_or_character_boundaries() {
        let t = "ab cd  ef\ngh";
        assert_eq!(chunk_end(t, 0, 100), t.len());
        assert_eq!(chunk_end(t, 0, 4), 2); // "ab| cd"
        let cjk = "日本語のテキスト".repeat(10);
        let e = chunk_end(&cjk, 0, 20);
        assert!(cjk.is_char_boundary(e) && e <= 20 && e > 0);
    }

    /// Issue 17: a token-type array longer than the token list used to index out of bounds.
    #[test]
    fn inconsistent_gguf_arrays_are_errors_not_panics() {
        let ok = content(&["a", "b", "<s>"], &[1, 1, 3]);
        assert!(TextTokenizer::from_gguf(&ok).is_ok());
        for (tokens, types) in [
            (&["a", "b"][..], &[1, 1, 3, 3, 3][..]),
            (&["a", "b", "c"][..], &[3][..]),
            (&[][..], &[][..]),
        ] {
            let err = TextTokenizer::from_gguf(&content(tokens, types))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains("tokens"), "{tokens:?} {types:?}: {err}");
        }
    }

    /// SmolLM2-Instruct's template, as its GGUF carries it.
    const SMOLLM2: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    #[test]
    fn the_models_chat_template_renders_the_users_turn() {
        let tokens = ["a", "b", "<|im_start|>", "<|im_end|>"];
        let mut ct = content(&tokens, &[1, 1, 3, 3]);
        let plain = TextTokenizer::from_gguf(&ct).expect("tokenizer");
        assert!(!plain.has_chat_template());
        // Without a template but with ChatML's tokens: ChatML.
        assert_eq!(
            plain.chat_prompt("hi").expect("renders").as_deref(),
            Some("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")
        );
        ct.metadata.insert(
            "tokenizer.chat_template".to_string(),
            Value::String(SMOLLM2.into()),
        );
        let t = TextTokenizer::from_gguf(&ct).expect("tokenizer");
        assert!(t.has_chat_template());
        let p = t
            .chat_prompt("Write about bees.")
            .expect("renders")
            .expect("a template");
        assert_eq!(
            p,
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nWrite about bees.<|im_end|>\n<|im_start|>assistant\n"
        );
        // A template that raises, or does not parse, is an error, not a panic.
        for bad in ["{{ raise_exception('no system role') }}", "{% for x in %}"] {
            ct.metadata.insert(
                "tokenizer.chat_template".to_string(),
                Value::String(bad.into()),
            );
            let t = TextTokenizer::from_gguf(&ct).expect("tokenizer");
            assert!(t.chat_prompt("x").is_err(), "{bad}");
        }
    }
}
