//! Shell-style patterns exactly as Python's `fnmatch` reads them on POSIX, which is what
//! in-toto artifact rules use: whole-string, case-sensitive, not path-aware (`*` and `?` cross
//! `/`), `[seq]` / `[!seq]` classes with Python's range handling, an unclosed `[` taken
//! literally and no escape character.

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    tokens: Vec<Token>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Char(char),
    Any,
    Star,
    Class {
        negate: bool,
        items: Vec<(char, char)>,
    },
}

impl Token {
    fn matches(&self, c: char) -> bool {
        match self {
            Token::Char(x) => *x == c,
            Token::Any => true,
            Token::Star => true,
            Token::Class { negate, items } => {
                items.iter().any(|(lo, hi)| *lo <= c && c <= *hi) != *negate
            }
        }
    }
}

impl Pattern {
    /// Compiles a pattern; every string is a valid pattern.
    pub fn new(pattern: &str) -> Self {
        let pat: Vec<char> = pattern.chars().collect();
        let n = pat.len();
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < n {
            let c = pat[i];
            i += 1;
            match c {
                '*' => {
                    if tokens.last() != Some(&Token::Star) {
                        tokens.push(Token::Star);
                    }
                }
                '?' => tokens.push(Token::Any),
                '[' => {
                    let mut j = i;
                    if j < n && pat[j] == '!' {
                        j += 1;
                    }
                    if j < n && pat[j] == ']' {
                        j += 1;
                    }
                    while j < n && pat[j] != ']' {
                        j += 1;
                    }
                    if j >= n {
                        tokens.push(Token::Char('['));
                    } else {
                        tokens.push(class(&pat, i, j));
                        i = j + 1;
                    }
                }
                other => tokens.push(Token::Char(other)),
            }
        }
        Pattern { tokens }
    }

    /// Whether the whole of `text` matches.
    pub fn matches(&self, text: &str) -> bool {
        let text: Vec<char> = text.chars().collect();
        let (mut t, mut p) = (0usize, 0usize);
        // Position of the last star and the text position it was tried at.
        let mut backtrack: Option<(usize, usize)> = None;
        while t < text.len() {
            match self.tokens.get(p) {
                Some(Token::Star) => {
                    backtrack = Some((p, t));
                    p += 1;
                }
                Some(token) if token.matches(text[t]) => {
                    p += 1;
                    t += 1;
                }
                _ => match backtrack {
                    Some((star, at)) => {
                        p = star + 1;
                        t = at + 1;
                        backtrack = Some((star, at + 1));
                    }
                    None => return false,
                },
            }
        }
        self.tokens[p..].iter().all(|token| *token == Token::Star)
    }
}

/// The class between `[` (before `start`) and `]` (at `end`), as `fnmatch.translate` builds
/// it: `-` separates ranges except first (after any `!`) and last, empty ranges are dropped.
fn class(pat: &[char], start: usize, end: usize) -> Token {
    let negate = pat[start] == '!';
    let stuff = &pat[start..end];
    let chunks: Vec<Vec<char>> = if !stuff.contains(&'-') {
        vec![stuff.to_vec()]
    } else {
        let mut chunks = Vec::new();
        let mut i = start;
        let mut k = if negate { start + 2 } else { start + 1 };
        while let Some(found) = (k.min(end)..end).find(|&x| pat[x] == '-') {
            chunks.push(pat[i..found].to_vec());
            i = found + 1;
            k = found + 3;
        }
        let last = pat[i.min(end)..end].to_vec();
        if last.is_empty() {
            if let Some(prev) = chunks.last_mut() {
                prev.push('-');
            }
        } else {
            chunks.push(last);
        }
        // Drop empty ranges (`z-a`): the two chunks merge without their range ends.
        let mut k = chunks.len().saturating_sub(1);
        while k > 0 {
            let (prev_last, next_first) = (chunks[k - 1].last(), chunks[k].first());
            if let (Some(a), Some(b)) = (prev_last, next_first)
                && a > b
            {
                let next = chunks.remove(k);
                chunks[k - 1].pop();
                chunks[k - 1].extend_from_slice(&next[1..]);
            }
            k -= 1;
        }
        chunks
    };
    let mut items = Vec::new();
    for (index, chunk) in chunks.iter().enumerate() {
        let mut chars: &[char] = chunk;
        if index == 0 && negate {
            chars = &chars[1..];
        }
        // The first char of a later chunk ends the range started by the previous chunk.
        if index > 0 {
            if let (Some(lo), Some(hi)) = (chunks[index - 1].last(), chunk.first()) {
                items.push((*lo, *hi));
            }
            chars = chars.get(1..).unwrap_or_default();
        }
        // The last char of a chunk followed by another starts a range.
        let singles = if index + 1 < chunks.len() {
            &chars[..chars.len().saturating_sub(1)]
        } else {
            chars
        };
        items.extend(singles.iter().map(|c| (*c, *c)));
    }
    Token::Class { negate, items }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_python_fnmatch_on_the_reference_vectors() {
        let text = include_str!("../../../fixtures/intoto/rule-vectors.json");
        let vectors: serde_json::Value = serde_json::from_str(text).unwrap();
        let mut checked = 0;
        for case in vectors["fnmatch"].as_array().unwrap() {
            let pattern = Pattern::new(case["pattern"].as_str().unwrap());
            for (name, expected) in case["matches"].as_object().unwrap() {
                assert_eq!(
                    pattern.matches(name),
                    expected.as_bool().unwrap(),
                    "pattern {:?} on {name:?}",
                    case["pattern"]
                );
                checked += 1;
            }
        }
        assert!(checked > 40, "{checked}");
    }

    #[test]
    fn classes_and_ranges_follow_python() {
        let cases: &[(&str, &str, bool)] = &[
            ("[a-]", "-", true),
            ("[a-]", "a", true),
            ("[a-]", "b", false),
            ("[-a]", "-", true),
            ("[!-a]", "-", false),
            ("[!-a]", "b", true),
            ("[a-c-e]", "d", false),
            ("[a-c-e]", "-", true),
            ("[a--b]", "b", true),
            ("[a--b]", "a", false),
            ("[z-a]", "m", false),
            ("[z-a]", "z", false),
            ("[!z-a]", "m", true),
            ("[--]", "-", true),
            ("[]-a]", "^", true),
            ("[^a]", "^", true),
            ("[^a]", "b", false),
            ("a*b*c", "aXbYbZc", true),
            ("a*b*c", "aXbYbZ", false),
            ("*a", "", false),
            ("", "", true),
            ("\\[", "\\[", true),
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(
                Pattern::new(pattern).matches(text),
                *expected,
                "{pattern:?} on {text:?}"
            );
        }
    }
}
