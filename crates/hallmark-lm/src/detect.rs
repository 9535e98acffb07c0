//! Detection from text: canonical whitespace, tokenization, scoring, spans as character ranges.

use hallmark_text::{Detection, TextMark};

use crate::{Error, TextTokenizer};

/// A watermarked span as a character range of the input text.
#[derive(Clone, Debug, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct CharSpan {
    /// First character (inclusive), in the caller's text.
    pub start: usize,
    /// Last character (exclusive).
    pub end: usize,
    /// Token range in the canonical text's tokenization.
    pub token_start: usize,
    /// Token range end (exclusive).
    pub token_end: usize,
    /// Corrected p-value of the span.
    pub p_value: f64,
}

/// The outcome of detection on a text.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TextDetection {
    /// Scores over token ids.
    #[serde(flatten)]
    pub detection: Detection,
    /// Tokens in the (canonical) text.
    pub tokens: usize,
    /// Watermarked spans as character ranges of the input.
    pub char_spans: Vec<CharSpan>,
}

/// Whitespace made canonical: every run of whitespace becomes one space, or one newline when it
/// holds a newline; leading and trailing whitespace goes. Doubling or collapsing spaces and
/// newlines then cannot change the tokens a detector sees. Returns the text and, for each of its
/// characters, the index of the character it came from in `text`.
pub fn canonical_whitespace(text: &str) -> (String, Vec<usize>) {
    let mut out = String::with_capacity(text.len());
    let mut map = Vec::with_capacity(text.len());
    let mut pending: Option<(char, usize)> = None;
    for (i, c) in text.chars().enumerate() {
        if c.is_whitespace() {
            let nl = c == '\n' || c == '\r';
            pending = match pending {
                Some(('\n', j)) => Some(('\n', j)),
                Some((_, j)) if nl => Some(('\n', j)),
                Some(p) => Some(p),
                None => Some((if nl { '\n' } else { ' ' }, i)),
            };
            continue;
        }
        if let Some((w, j)) = pending.take()
            && !out.is_empty()
        {
            out.push(w);
            map.push(j);
        }
        out.push(c);
        map.push(i);
    }
    (out, map)
}

/// Detects the watermark of `mark` in `text` tokenized by `tok`. Pairs that occur in
/// `exclude` (a prompt) are not scored.
///
/// # Errors
/// [`Error::Input`] for an empty text or one too short to score.
pub fn detect_text(
    mark: &TextMark,
    tok: &TextTokenizer,
    text: &str,
    exclude: Option<&str>,
) -> Result<TextDetection, Error> {
    let (canon, map) = canonical_whitespace(text);
    if canon.is_empty() {
        return Err(Error::Input("the text is empty".into()));
    }
    let enc = tok.encode(&canon)?;
    let ex = match exclude {
        Some(p) => tok.encode(&canonical_whitespace(p).0)?.ids,
        None => vec![],
    };
    let detection = mark
        .detect_excluding(&enc.ids, 0, &ex)
        .map_err(|e| Error::Input(e.to_string()))?;
    let orig = |c: usize, end: bool| -> usize {
        if end {
            c.checked_sub(1)
                .and_then(|k| map.get(k))
                .map_or(0, |&o| o + 1)
        } else {
            map.get(c).copied().unwrap_or(text.chars().count())
        }
    };
    let char_spans = detection
        .spans
        .iter()
        .map(|s| {
            let cs = enc.offsets.get(s.start).map_or(0, |o| o.0);
            let ce = enc.offsets.get(s.end.saturating_sub(1)).map_or(cs, |o| o.1);
            CharSpan {
                start: orig(cs, false),
                end: orig(ce, true),
                token_start: s.start,
                token_end: s.end,
                p_value: s.p_value,
            }
        })
        .collect();
    Ok(TextDetection {
        detection,
        tokens: enc.ids.len(),
        char_spans,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_is_canonical_and_mapped() {
        let (c, m) = canonical_whitespace("  a  b\n\n c\t d  ");
        assert_eq!(c, "a b\nc d");
        let orig: Vec<char> = "  a  b\n\n c\t d  ".chars().collect();
        for (k, ch) in c.chars().enumerate() {
            if !ch.is_whitespace() {
                assert_eq!(orig[m[k]], ch);
            }
        }
        assert_eq!(
            canonical_whitespace("a b\nc d").0,
            canonical_whitespace("a  b\n\nc  d").0
        );
        assert_eq!(canonical_whitespace(" \n ").0, "");
    }
}
