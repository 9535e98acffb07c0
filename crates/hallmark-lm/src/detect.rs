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
    /// Scores over token ids, of the case reading that scored best; its p-values are
    /// multiplied by the number of readings tried (Bonferroni), so they hold for the search.
    #[serde(flatten)]
    pub detection: Detection,
    /// Tokens in the (canonical) text.
    pub tokens: usize,
    /// Watermarked spans as character ranges of the input.
    pub char_spans: Vec<CharSpan>,
    /// The case reading that scored best (see [`CaseReading`]).
    pub case: CaseReading,
    /// How many distinct case readings the text has, all scored (1 to 3).
    pub case_readings: usize,
    /// How many keys were tried (the p-values are corrected for them too).
    pub keys: usize,
}

/// How detection reads the letters' case. Reposted text is often shouted (all capitals) or
/// title-cased, which re-tokenizes every word; generated text is mostly sentence case, so
/// reading the text back in sentence case recovers most of its tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CaseReading {
    /// The text as it is.
    AsIs,
    /// The first letter of every sentence capitalised, the rest as it is.
    SentenceStarts,
    /// All lower-case, then the first letter of every sentence and the word "i" capitalised.
    SentenceCase,
}

/// `c` in the other case when that is one character (so character offsets are kept).
fn one_char(mut it: impl Iterator<Item = char>, c: char) -> char {
    match (it.next(), it.next()) {
        (Some(x), None) => x,
        _ => c,
    }
}

/// For each character of `text`, whether it is the first letter of a sentence. A sentence
/// starts at the beginning, after a newline, and after . ! ? followed by whitespace (closing
/// quotes and brackets in between are allowed); a digit first means no letter starts it. The
/// one definition the case readings and the benchmark's case attacks share.
pub fn sentence_start_letters(text: &str) -> Vec<bool> {
    let (mut at_start, mut after_end) = (true, false);
    text.chars()
        .map(|c| {
            let start = at_start && c.is_alphabetic();
            if c.is_alphanumeric() {
                at_start = false;
                after_end = false;
            }
            if matches!(c, '.' | '!' | '?') {
                after_end = true;
            } else if c == '\n' || (c.is_whitespace() && after_end) {
                at_start = true;
            }
            start
        })
        .collect()
}

/// The text read as `reading`; the same number of characters, so spans map back unchanged.
pub fn read_case(text: &str, reading: CaseReading) -> String {
    let chars: Vec<char> = text.chars().collect();
    let starts = sentence_start_letters(text);
    let mut out = String::with_capacity(text.len());
    for (i, &c) in chars.iter().enumerate() {
        let mut x = match reading {
            CaseReading::AsIs | CaseReading::SentenceStarts => c,
            CaseReading::SentenceCase => one_char(c.to_lowercase(), c),
        };
        if reading != CaseReading::AsIs && starts[i] {
            x = one_char(c.to_uppercase(), c);
        }
        if reading == CaseReading::SentenceCase && (c == 'i' || c == 'I') {
            let before = i == 0 || !chars[i - 1].is_alphanumeric();
            let after = chars.get(i + 1).is_none_or(|n| !n.is_alphanumeric());
            if before && after {
                x = 'I';
            }
        }
        out.push(x);
    }
    out
}

/// The readings detection scores for `text`: the text as it is, plus a reading only where the
/// text's own shape calls for one, so ordinary text (K = 1) pays no correction. Shouted text
/// (most letters capitals) and title-cased text (most words capitalised) are read in sentence
/// case; text whose sentences mostly start in lower case (but is not shouted) with sentence
/// starts capitalised. The choice depends on the text alone, never on a key or a score, so
/// multiplying by the number of readings keeps the test exact. Distinct readings only.
pub fn case_readings(text: &str) -> Vec<(CaseReading, String)> {
    let (mut letters, mut upper) = (0usize, 0usize);
    let (mut words, mut capital_words) = (0usize, 0usize);
    let (mut starts, mut lower_starts) = (0usize, 0usize);
    let mut in_word = false;
    for (c, start) in text.chars().zip(sentence_start_letters(text)) {
        if c.is_alphabetic() {
            letters += 1;
            upper += usize::from(c.is_uppercase());
            if !in_word {
                words += 1;
                capital_words += usize::from(c.is_uppercase());
            }
        }
        if start {
            starts += 1;
            lower_starts += usize::from(c.is_lowercase());
        }
        in_word = c.is_alphanumeric() || (in_word && c == '\'');
    }
    let shouted = letters >= 8 && upper * 10 > letters * 6;
    let titled = words >= 4 && capital_words * 10 > words * 6;
    let lower_starts = !shouted && starts >= 1 && lower_starts * 2 > starts;
    let mut out: Vec<(CaseReading, String)> = vec![(CaseReading::AsIs, text.to_string())];
    let mut add = |r: CaseReading| {
        let t = read_case(text, r);
        if out.iter().all(|(_, u)| *u != t) {
            out.push((r, t));
        }
    };
    if shouted || titled {
        add(CaseReading::SentenceCase);
    }
    if lower_starts {
        add(CaseReading::SentenceStarts);
    }
    out
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
    detect_text_keys(&[mark], tok, text, exclude).map(|(_, d)| d)
}

/// [`detect_text`] under several keys at once (a platform holding many providers' keys):
/// the text is tokenized once per case reading and its key-independent bookkeeping done once
/// per configuration ([`TextMark::detect_many`]), so each further key costs only its keyed
/// scores. Returns the index of the key that scored best and its detection, whose p-values
/// are multiplied by the number of keys and of case readings (family-wise, Bonferroni).
///
/// # Errors
/// [`Error::Input`] for an empty text, one too short to score, or no keys.
pub fn detect_text_keys(
    marks: &[&TextMark],
    tok: &TextTokenizer,
    text: &str,
    exclude: Option<&str>,
) -> Result<(usize, TextDetection), Error> {
    if marks.is_empty() {
        return Err(Error::Input("no watermark key to detect with".into()));
    }
    let (canon, map) = canonical_whitespace(text);
    if canon.is_empty() {
        return Err(Error::Input("the text is empty".into()));
    }
    // Every distinct case reading is scored under every key; the best counts, its p-values
    // multiplied by the number of (reading, key) pairs (the search is part of the test).
    let readings = case_readings(&canon);
    let k = readings.len() * marks.len();
    let mut best: Option<(CaseReading, usize, crate::tokenizer::Encoded, Detection)> = None;
    let mut first_err = None;
    for (reading, t) in &readings {
        let enc = tok.encode(t)?;
        // The prompt's pairs are not evidence, nor are those of the chat template the model
        // wrapped it in (when it has one): both are excluded.
        let ex = match exclude {
            Some(p) => {
                let p = read_case(&canonical_whitespace(p).0, *reading);
                let mut ids = tok.encode(&p)?.ids;
                if let Ok(Some(chat)) = tok.chat_prompt(&p) {
                    ids.extend(tok.encode_prompt(&chat)?);
                }
                ids
            }
            None => vec![],
        };
        let mut best_here: Option<(usize, Detection)> = None;
        for (ki, r) in TextMark::detect_many(marks, &enc.ids, 0, &ex)
            .into_iter()
            .enumerate()
        {
            match r {
                Ok(d) => {
                    if best_here
                        .as_ref()
                        .is_none_or(|(_, b)| d.p_value < b.p_value)
                    {
                        best_here = Some((ki, d));
                    }
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        if let Some((ki, d)) = best_here
            && best
                .as_ref()
                .is_none_or(|(_, _, _, b)| d.p_value < b.p_value)
        {
            best = Some((*reading, ki, enc, d));
        }
    }
    let Some((case, key, enc, mut detection)) = best else {
        return Err(Error::Input(
            first_err.map_or_else(|| "the text is empty".into(), |e| e.to_string()),
        ));
    };
    let kf = k as f64;
    detection.p_value = (detection.p_value * kf).min(1.0);
    detection.p_value_whole = (detection.p_value_whole * kf).min(1.0);
    for s in &mut detection.spans {
        s.p_value = (s.p_value * kf).min(1.0);
    }
    detection
        .spans
        .retain(|s| s.p_value < hallmark_text::SPAN_ALPHA);
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
    Ok((
        key,
        TextDetection {
            detection,
            tokens: enc.ids.len(),
            char_spans,
            case,
            case_readings: readings.len(),
            keys: marks.len(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_readings_restore_sentence_case_and_keep_offsets() {
        let shouted =
            "THE CAT SAT ON THE MAT. IT WAS HAPPY! \"I THINK SO,\" SAID I.\nNEW LINE HERE";
        assert_eq!(
            read_case(shouted, CaseReading::SentenceCase),
            "The cat sat on the mat. It was happy! \"I think so,\" said I.\nNew line here"
        );
        let titled = "The Cat Sat On The Mat. It Was Happy.";
        assert_eq!(
            read_case(titled, CaseReading::SentenceCase),
            "The cat sat on the mat. It was happy."
        );
        let lowered_starts = "the cat sat. it was happy. Paris is far.";
        assert_eq!(
            read_case(lowered_starts, CaseReading::SentenceStarts),
            "The cat sat. It was happy. Paris is far."
        );
        for t in [shouted, titled, lowered_starts, "STRASSE ß İstanbul ǅ"] {
            for (_, r) in case_readings(t) {
                assert_eq!(r.chars().count(), t.chars().count(), "{t:?} -> {r:?}");
            }
        }
        // Ordinary text, with its proper nouns and its "I", has one reading: no correction.
        assert_eq!(
            case_readings("The cat met Anna in Paris. I think it was happy.").len(),
            1
        );
        assert_eq!(case_readings(shouted).len(), 2);
        assert_eq!(case_readings(titled).len(), 2);
        assert_eq!(case_readings(lowered_starts).len(), 2);
        assert_eq!(
            case_readings(lowered_starts)[1].0,
            CaseReading::SentenceStarts
        );
        // Lower-cased text gets its sentence starts back.
        assert_eq!(case_readings("the cat sat. it was happy.").len(), 2);
    }

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
