//! Streaming output: incremental detokenization ([`StreamDecoder`]) and stop
//! strings ([`StopMatcher`]).
//!
//! `StreamDecoder` decodes a sliding window of ids (the ids of the last chunk
//! it gave out plus the ones not yet given out) and returns only the text the
//! new id added, holding it back while it ends in an incomplete UTF-8
//! character (U+FFFD). Decoding the window rather than single tokens keeps
//! decoders that look at neighbours (SentencePiece's leading-space strip,
//! byte fallback) right, so the chunks concatenate to `decode()` of the whole
//! sequence.

use anyhow::Result;

use super::Tokenizer;

/// Incremental detokenizer: feed ids one at a time, get text chunks.
pub struct StreamDecoder<'a> {
    tokenizer: &'a Tokenizer,
    skip_special: bool,
    ids: Vec<u32>,
    prefix_offset: usize,
    read_offset: usize,
    prefix_text: String,
}

impl<'a> StreamDecoder<'a> {
    /// A decoder; `skip_special` drops special tokens as `decode` would.
    pub fn new(tokenizer: &'a Tokenizer, skip_special: bool) -> StreamDecoder<'a> {
        StreamDecoder {
            tokenizer,
            skip_special,
            ids: Vec::new(),
            prefix_offset: 0,
            read_offset: 0,
            prefix_text: String::new(),
        }
    }

    /// Add one id; returns the new text, or `None` while it is held back
    /// (an incomplete character, or a token that adds no text yet).
    pub fn step(&mut self, id: u32) -> Result<Option<String>> {
        self.ids.push(id);
        let new_text = self
            .tokenizer
            .decode(&self.ids[self.prefix_offset..], self.skip_special)?;
        if new_text.len() > self.prefix_text.len()
            && !new_text.ends_with('\u{FFFD}')
            && new_text.is_char_boundary(self.prefix_text.len())
            && new_text.starts_with(self.prefix_text.as_str())
        {
            let chunk = new_text[self.prefix_text.len()..].to_string();
            self.prefix_offset = self.read_offset;
            self.read_offset = self.ids.len();
            self.prefix_text = self
                .tokenizer
                .decode(&self.ids[self.prefix_offset..], self.skip_special)?;
            Ok(Some(chunk))
        } else {
            Ok(None)
        }
    }

    /// The text still held back (for example the bytes of an unfinished
    /// character, as U+FFFD), given out at the end of generation.
    pub fn flush(&mut self) -> Result<Option<String>> {
        if self.read_offset == self.ids.len() {
            return Ok(None);
        }
        let new_text = self
            .tokenizer
            .decode(&self.ids[self.prefix_offset..], self.skip_special)?;
        self.prefix_offset = self.ids.len();
        self.read_offset = self.ids.len();
        let chunk = if new_text.starts_with(self.prefix_text.as_str()) {
            new_text[self.prefix_text.len()..].to_string()
        } else {
            new_text
        };
        self.prefix_text.clear();
        Ok(if chunk.is_empty() { None } else { Some(chunk) })
    }

    /// Every id fed so far.
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }
}

/// What [`StopMatcher::push`] found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StopChunk {
    /// Text that is safe to show now (never part of a stop string).
    pub text: String,
    /// Index (into the matcher's stop strings) of the stop string that was
    /// hit; generation should end. The stop string itself is not in `text`.
    pub stopped: Option<usize>,
}

/// Finds stop strings in streamed text, holding back any tail that could be
/// the start of one.
#[derive(Debug, Clone, Default)]
pub struct StopMatcher {
    stops: Vec<String>,
    buffer: String,
    stopped: Option<usize>,
}

impl StopMatcher {
    /// A matcher for these stop strings (empty strings are ignored).
    pub fn new<S: AsRef<str>>(stops: &[S]) -> StopMatcher {
        StopMatcher {
            stops: stops
                .iter()
                .map(|s| s.as_ref().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            buffer: String::new(),
            stopped: None,
        }
    }

    /// The stop strings.
    pub fn stops(&self) -> &[String] {
        &self.stops
    }

    /// Whether a stop string was hit.
    pub fn is_stopped(&self) -> Option<usize> {
        self.stopped
    }

    /// Feed a chunk of text. After a stop, further text is dropped.
    pub fn push(&mut self, text: &str) -> StopChunk {
        if self.stopped.is_some() {
            return StopChunk {
                text: String::new(),
                stopped: self.stopped,
            };
        }
        self.buffer.push_str(text);
        // The earliest stop string in the buffer (the longest on a tie).
        let mut hit: Option<(usize, usize)> = None;
        for (i, s) in self.stops.iter().enumerate() {
            if let Some(pos) = self.buffer.find(s.as_str()) {
                let better = match hit {
                    None => true,
                    Some((p, j)) => pos < p || (pos == p && s.len() > self.stops[j].len()),
                };
                if better {
                    hit = Some((pos, i));
                }
            }
        }
        if let Some((pos, i)) = hit {
            let text = self.buffer[..pos].to_string();
            self.buffer.clear();
            self.stopped = Some(i);
            return StopChunk {
                text,
                stopped: Some(i),
            };
        }
        // Hold back the longest tail that is a proper prefix of a stop.
        let mut keep_from = self.buffer.len();
        for (start, _) in self.buffer.char_indices() {
            let tail = &self.buffer[start..];
            if self
                .stops
                .iter()
                .any(|s| s.len() > tail.len() && s.starts_with(tail))
            {
                keep_from = start;
                break;
            }
        }
        let text = self.buffer[..keep_from].to_string();
        self.buffer.drain(..keep_from);
        StopChunk {
            text,
            stopped: None,
        }
    }

    /// The text held back, at the end of generation (no stop was hit).
    pub fn flush(&mut self) -> String {
        std::mem::take(&mut self.buffer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_string_split_over_chunks() {
        let mut m = StopMatcher::new(&["###", "<end>"]);
        assert_eq!(m.push("Hello #").text, "Hello ");
        let c = m.push("# x");
        assert_eq!(c.text, "## x");
        assert_eq!(c.stopped, None);
        assert_eq!(m.push("y<e").text, "y");
        let c = m.push("nd>tail");
        assert_eq!(
            c,
            StopChunk {
                text: String::new(),
                stopped: Some(1)
            }
        );
        assert_eq!(m.push("more").text, "");
        assert_eq!(m.is_stopped(), Some(1));
    }

    #[test]
    fn earliest_stop_wins_and_held_text_flushes() {
        let mut m = StopMatcher::new(&["b", "ab"]);
        let c = m.push("xxab");
        assert_eq!(c.text, "xx");
        assert_eq!(c.stopped, Some(1));
        let mut m = StopMatcher::new(&["STOP"]);
        assert_eq!(m.push("é ST").text, "é ");
        assert_eq!(m.flush(), "ST");
    }

    #[test]
    fn no_stops_passes_everything() {
        let mut m = StopMatcher::new::<&str>(&[]);
        assert_eq!(m.push("abc").text, "abc");
        assert_eq!(m.flush(), "");
    }
}
