//! The tokeniser shared by the index and the query.
//!
//! A token is a maximal run of alphanumeric characters (`char::is_alphanumeric`, so
//! digits and every script's letters — Cyrillic, Greek, CJK, … — are token characters;
//! punctuation, spaces, symbols and emoji are separators and never appear in a token).
//! Each token character is lower-cased (`char::to_lowercase`) and accent-folded:
//!
//! - combining marks U+0300–U+036F are dropped (so a decomposed `e` + U+0301 folds to
//!   `e`, like the precomposed `é`); a combining mark inside a token stays in its span;
//! - Latin-1 Supplement and Latin Extended-A letters fold to their base letters
//!   (`é`→`e`, `ñ`→`n`, `ł`→`l`, …) and the ligatures expand (`ß`→`ss`, `æ`→`ae`,
//!   `œ`→`oe`, `þ`→`th`, `ĳ`→`ij`);
//! - other scripts are kept as they are (lower-cased).
//!
//! A token keeps at most [`MAX_TOKEN_CHARS`] folded characters (the rest of a longer run
//! is dropped from its text but stays inside its span), so the index and the query
//! truncate alike.
//!
//! **Spans are in UTF-16 code units** of the original string, `[start, end)`, which is
//! what JavaScript's `String.prototype.slice` takes: `title.slice(start, end)` is the
//! original text of the token (accents and case as written).

/// Folded characters kept per token; the index and the query truncate alike.
pub const MAX_TOKEN_CHARS: usize = 32;

/// One token: its folded text and its span in the original string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    /// Lower-cased, accent-folded text (at most [`MAX_TOKEN_CHARS`] characters).
    pub text: String,
    /// First UTF-16 code unit of the token in the original string.
    pub start: u32,
    /// One past the last UTF-16 code unit of the token in the original string.
    pub end: u32,
}

/// Tokenises `text` (see the module doc).
pub fn tokenize(text: &str) -> Vec<Token> {
    tokenize_capped(text, usize::MAX)
}

/// Tokenises `text`, stopping after `max_tokens` tokens.
pub fn tokenize_capped(text: &str, max_tokens: usize) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut cur: Option<(Token, usize)> = None; // (token so far, folded char count)
    let mut pos: u32 = 0;
    for c in text.chars() {
        let width = c.len_utf16() as u32;
        let word = c.is_alphanumeric() || (cur.is_some() && is_combining(c));
        if word {
            let (tok, n) = cur.get_or_insert_with(|| {
                let t = Token {
                    text: String::new(),
                    start: pos,
                    end: pos,
                };
                (t, 0)
            });
            fold_into(c, &mut tok.text, n);
            tok.end = pos.saturating_add(width);
        } else if let Some((tok, _)) = cur.take() {
            if !tok.text.is_empty() {
                tokens.push(tok);
                if tokens.len() >= max_tokens {
                    return tokens;
                }
            }
        }
        pos = pos.saturating_add(width);
    }
    if let Some((tok, _)) = cur {
        if !tok.text.is_empty() && tokens.len() < max_tokens {
            tokens.push(tok);
        }
    }
    tokens
}

/// Folds one term the way tokens are folded; `None` if it holds a separator or folds
/// to nothing. Used for query words already split.
pub fn fold_word(word: &str) -> Option<String> {
    let mut toks = tokenize_capped(word, 2);
    if toks.len() == 1 {
        toks.pop().map(|t| t.text)
    } else {
        None
    }
}

/// Combining diacritical marks (U+0300–U+036F): dropped from token text.
fn is_combining(c: char) -> bool {
    ('\u{300}'..='\u{36f}').contains(&c)
}

/// Appends the lower-cased, folded form of `c` to `out`, counting characters in `n`
/// and stopping at [`MAX_TOKEN_CHARS`].
fn fold_into(c: char, out: &mut String, n: &mut usize) {
    for lc in c.to_lowercase() {
        if is_combining(lc) {
            continue;
        }
        let folded = fold_latin(lc);
        let mut push = |ch: char| {
            if *n < MAX_TOKEN_CHARS {
                out.push(ch);
                *n += 1;
            }
        };
        match folded {
            Fold::One(ch) => push(ch),
            Fold::Two(a, b) => {
                push(a);
                push(b);
            }
        }
    }
}

/// The result of folding one lower-case character.
enum Fold {
    One(char),
    Two(char, char),
}

/// Folds a lower-case Latin-1 Supplement / Latin Extended-A letter to ASCII.
fn fold_latin(c: char) -> Fold {
    let base = match c {
        'à'..='å' | 'ā' | 'ă' | 'ą' => 'a',
        'ç' | 'ć' | 'ĉ' | 'ċ' | 'č' => 'c',
        'ď' | 'đ' | 'ð' => 'd',
        'è'..='ë' | 'ē' | 'ĕ' | 'ė' | 'ę' | 'ě' => 'e',
        'ĝ' | 'ğ' | 'ġ' | 'ģ' => 'g',
        'ĥ' | 'ħ' => 'h',
        'ì'..='ï' | 'ĩ' | 'ī' | 'ĭ' | 'į' | 'ı' => 'i',
        'ĵ' => 'j',
        'ķ' | 'ĸ' => 'k',
        'ĺ' | 'ļ' | 'ľ' | 'ŀ' | 'ł' => 'l',
        'ñ' | 'ń' | 'ņ' | 'ň' | 'ŉ' | 'ŋ' => 'n',
        'ò'..='ö' | 'ø' | 'ō' | 'ŏ' | 'ő' => 'o',
        'ŕ' | 'ŗ' | 'ř' => 'r',
        'ś' | 'ŝ' | 'ş' | 'š' | 'ſ' => 's',
        'ţ' | 'ť' | 'ŧ' => 't',
        'ù'..='ü' | 'ũ' | 'ū' | 'ŭ' | 'ů' | 'ű' | 'ų' => 'u',
        'ŵ' => 'w',
        'ý' | 'ÿ' | 'ŷ' => 'y',
        'ź' | 'ż' | 'ž' => 'z',
        'ß' => return Fold::Two('s', 's'),
        'æ' => return Fold::Two('a', 'e'),
        'œ' => return Fold::Two('o', 'e'),
        'þ' => return Fold::Two('t', 'h'),
        'ĳ' => return Fold::Two('i', 'j'),
        other => other,
    };
    Fold::One(base)
}
