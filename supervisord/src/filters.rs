//! containerd's filter grammar, parsed once into a [`Filter`] and matched over an
//! [`Adaptor`].
//!
//! ```text
//! filters   := selector ( ',' selector )*          ',' is AND
//! selector  := fieldpath [ op value ]              no op: the field is present
//! fieldpath := field ( '.' field )*                labels."k.x" or labels.k
//! field     := quoted | [A-Za-z0-9_]+
//! op        := '==' | '!=' | '~='                   '~=' is a regular expression
//! value     := quoted | run of non-space, non-',' characters
//! quoted    := "…" (with \-escapes)
//! ```
//!
//! Several filter strings are ORed; an empty string, or no string at all, matches
//! everything. As in containerd, `!=` matches an absent field (its value reads as "") and
//! `==` never does.

use std::borrow::Cow;

use regex::Regex;

/// Gives a filter the value of a field path of one object (containerd `filters.Adaptor`).
pub trait Adaptor {
    /// The value at `path` (e.g. `["labels", "k.x"]`), or `None` when absent.
    fn field(&self, path: &[String]) -> Option<Cow<'_, str>>;
}

/// A parse failure: always an invalid argument.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("filters: parse error: [{input}]: {reason}")]
pub struct FilterError {
    pub input: String,
    pub reason: String,
}

#[derive(Debug, Clone)]
enum Op {
    Present,
    Equal(String),
    NotEqual(String),
    Matches(Regex),
}

#[derive(Debug, Clone)]
struct Selector {
    path: Vec<String>,
    op: Op,
}

impl Selector {
    fn matches(&self, a: &dyn Adaptor) -> bool {
        let value = a.field(&self.path);
        match &self.op {
            Op::Present => value.is_some(),
            Op::Equal(v) => value.is_some_and(|x| x == v.as_str()),
            Op::NotEqual(v) => value.as_deref().unwrap_or("") != v,
            Op::Matches(re) => re.is_match(value.as_deref().unwrap_or("")),
        }
    }
}

/// A parsed set of filters: an OR of ANDs of selectors.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// `None` = matches everything.
    any_of: Option<Vec<Vec<Selector>>>,
}

impl Filter {
    /// Parse several filter strings (ORed). An empty list or an empty string matches all.
    pub fn parse_all<S: AsRef<str>>(filters: &[S]) -> Result<Self, FilterError> {
        let mut any_of = Vec::new();
        for f in filters {
            let f = f.as_ref();
            if f.trim().is_empty() {
                return Ok(Self::all());
            }
            any_of.push(Parser::new(f).parse()?);
        }
        if any_of.is_empty() {
            return Ok(Self::all());
        }
        Ok(Self {
            any_of: Some(any_of),
        })
    }

    /// Parse one filter string.
    pub fn parse(filter: &str) -> Result<Self, FilterError> {
        Self::parse_all(&[filter])
    }

    /// The filter that matches everything.
    pub fn all() -> Self {
        Self { any_of: None }
    }

    /// Does `object` pass?
    pub fn matches(&self, object: &dyn Adaptor) -> bool {
        match &self.any_of {
            None => true,
            Some(any_of) => any_of
                .iter()
                .any(|all| all.iter().all(|s| s.matches(object))),
        }
    }
}

/// Look up `labels.<key>` in a label map: a helper for adaptors.
pub fn label<'a>(
    labels: &'a std::collections::BTreeMap<String, String>,
    path: &[String],
) -> Option<Cow<'a, str>> {
    match path {
        [key] => labels.get(key).map(|v| Cow::Borrowed(v.as_str())),
        [] => None,
        // A dotted key written without quotes: labels.a.b means the key "a.b".
        keys => labels
            .get(&keys.join("."))
            .map(|v| Cow::Borrowed(v.as_str())),
    }
}

struct Parser<'a> {
    input: &'a str,
    chars: Vec<char>,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn new(input: &'a str) -> Self {
        Self {
            input,
            chars: input.chars().collect(),
            pos: 0,
        }
    }

    fn err(&self, reason: impl Into<String>) -> FilterError {
        FilterError {
            input: self.input.to_owned(),
            reason: format!("{} at position {}", reason.into(), self.pos),
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn parse(mut self) -> Result<Vec<Selector>, FilterError> {
        let mut selectors = vec![self.selector()?];
        loop {
            self.skip_space();
            match self.peek() {
                None => return Ok(selectors),
                Some(',') => {
                    self.pos += 1;
                    selectors.push(self.selector()?);
                }
                Some(c) => return Err(self.err(format!("expected ',' or end, found {c:?}"))),
            }
        }
    }

    fn selector(&mut self) -> Result<Selector, FilterError> {
        let mut path = vec![self.field()?];
        loop {
            self.skip_space();
            if self.peek() == Some('.') {
                self.pos += 1;
                path.push(self.field()?);
            } else {
                break;
            }
        }
        self.skip_space();
        let op = match (self.peek(), self.chars.get(self.pos + 1).copied()) {
            (Some(c @ ('=' | '!' | '~')), Some('=')) => {
                self.pos += 2;
                let value = self.value()?;
                match c {
                    '=' => Op::Equal(value),
                    '!' => Op::NotEqual(value),
                    _ => Op::Matches(
                        Regex::new(&value).map_err(|e| self.err(format!("bad regex: {e}")))?,
                    ),
                }
            }
            (None | Some(','), _) => Op::Present,
            (Some(c), _) => return Err(self.err(format!("expected operator, found {c:?}"))),
        };
        Ok(Selector { path, op })
    }

    fn field(&mut self) -> Result<String, FilterError> {
        self.skip_space();
        match self.peek() {
            Some('"') => self.quoted(),
            Some(c) if c.is_ascii_alphanumeric() || c == '_' => {
                let start = self.pos;
                while self
                    .peek()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                {
                    self.pos += 1;
                }
                Ok(self.chars[start..self.pos].iter().collect())
            }
            Some(c) => Err(self.err(format!("expected field, found {c:?}"))),
            None => Err(self.err("expected field")),
        }
    }

    fn value(&mut self) -> Result<String, FilterError> {
        self.skip_space();
        match self.peek() {
            Some('"') => self.quoted(),
            Some(c) if c != ',' => {
                let start = self.pos;
                while self.peek().is_some_and(|c| c != ',' && !c.is_whitespace()) {
                    self.pos += 1;
                }
                Ok(self.chars[start..self.pos].iter().collect())
            }
            _ => Err(self.err("expected value")),
        }
    }

    /// A quoted string: `"…"` with backslash escapes.
    fn quoted(&mut self) -> Result<String, FilterError> {
        let Some(quote) = self.peek() else {
            return Err(self.err("expected quote"));
        };
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return Err(self.err("unterminated quoted string")),
                Some(c) if c == quote => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some('\\') => {
                    self.pos += 1;
                    let escaped = match self.peek() {
                        Some('n') => '\n',
                        Some('t') => '\t',
                        Some('r') => '\r',
                        Some(c @ ('\\' | '"')) => c,
                        Some(c) => return Err(self.err(format!("bad escape \\{c}"))),
                        None => return Err(self.err("unterminated escape")),
                    };
                    out.push(escaped);
                    self.pos += 1;
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    struct Obj {
        name: &'static str,
        labels: BTreeMap<String, String>,
    }

    impl Adaptor for Obj {
        fn field(&self, path: &[String]) -> Option<Cow<'_, str>> {
            match path.first().map(String::as_str) {
                Some("name") if path.len() == 1 => Some(Cow::Borrowed(self.name)),
                Some("labels") => label(&self.labels, &path[1..]),
                _ => None,
            }
        }
    }

    fn obj(name: &'static str, labels: &[(&str, &str)]) -> Obj {
        Obj {
            name,
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    fn m(filters: &[&str], o: &Obj) -> bool {
        Filter::parse_all(filters).expect("parses").matches(o)
    }

    #[test]
    fn empty_matches_everything() {
        let o = obj("a", &[]);
        assert!(m(&[], &o));
        assert!(m(&[""], &o));
        assert!(m(&["name==zzz", ""], &o));
    }

    #[test]
    fn equality_and_inequality() {
        let o = obj("busybox:latest", &[("k", "v")]);
        assert!(m(&["name==busybox:latest"], &o));
        assert!(!m(&["name==other"], &o));
        assert!(m(&["name!=other"], &o));
        assert!(!m(&["name!=busybox:latest"], &o));
        // absent fields: == never matches, != does
        assert!(!m(&["labels.nope==x"], &o));
        assert!(m(&["labels.nope!=x"], &o));
    }

    #[test]
    fn presence_regex_and_quotes() {
        let o = obj(
            "docker.io/library/alpine",
            &[("containerd.io/gc.root", "1"), ("k", "v w")],
        );
        assert!(m(&["labels.k"], &o));
        assert!(!m(&["labels.x"], &o));
        assert!(m(&[r#"labels."containerd.io/gc.root"==1"#], &o));
        assert!(m(&[r#"labels.k=="v w""#], &o));
        assert!(m(&["name~=alp"], &o));
        assert!(m(&["name~=^docker\\.io/"], &o));
        assert!(
            m(&["name==docker.io/library/alpine"], &o),
            "'/' is not a quote"
        );
        assert!(!m(&["name~=^alp"], &o));
    }

    #[test]
    fn comma_is_and_several_strings_are_or() {
        let o = obj("a", &[("k", "v")]);
        assert!(m(&["name==a,labels.k==v"], &o));
        assert!(!m(&["name==a,labels.k==w"], &o));
        assert!(m(&["name==b", "labels.k==v"], &o));
        assert!(!m(&["name==b", "labels.k==w"], &o));
        assert!(m(&[" name == a , labels.k == v "], &o));
    }

    #[test]
    fn parse_errors() {
        for bad in [
            "name==",
            "==a",
            "name=a",
            "name==a,",
            "labels.\"k",
            "name~=(",
            "name==a b",
        ] {
            assert!(Filter::parse(bad).is_err(), "{bad:?} should not parse");
        }
    }
}
