//! `?filter=` expressions on list endpoints, in Nomad's language (go-bexpr): selectors into the
//! JSON each endpoint answers with, compared to literals.
//!
//! ```text
//! Status == "running" and Meta.team != "infra"
//! "web" in Tags or not (Name matches "^batch-")
//! Datacenters contains "dc1" and NodePool is not empty
//! ```
//!
//! The grammar, loosest first: `or`, `and`, `not`, then one match — `Sel == V`, `Sel != V`,
//! `Sel is empty`, `Sel is not empty`, `V in Sel`, `V not in Sel`, `Sel contains V`,
//! `Sel not contains V`, `Sel matches V`, `Sel not matches V` — or a parenthesised expression.
//! A selector is a dotted path (`Job.Meta.team`) where a part may be indexed
//! (`Meta["dotted.key"]`); a value is a `"string"`, a `` `raw string` ``, a number, `true`,
//! `false`, or a bare word read as a string.
//!
//! How a match reads the JSON (Nomad: `github.com/hashicorp/go-bexpr`, `evaluate.go`):
//! - `==`/`!=` compare a string, number or boolean with the literal read as the field's type;
//! - `in`/`contains` look for an equal element in an array, a key in an object, a substring in
//!   a string;
//! - `is empty` holds for `null`, `""`, `[]` and `{}`;
//! - `matches` is a regular expression on a string;
//! - a selector that names nothing (a missing map key, an absent optional field) matches only
//!   the negative forms (`!=`, `not in`, `not contains`, `not matches`, `is empty`).
//!
//! A malformed expression, or a match that cannot apply (`Tags == "x"` on an array), is an error
//! naming the problem, answered as Nomad's 400 "failed to read filter expression".

use std::fmt;

use regex::Regex;
use serde_json::Value;

/// A parsed filter expression.
#[derive(Debug)]
pub struct Filter {
    root: Expr,
}

/// Why an expression does not parse, or does not apply to a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("{position}: {message}")]
    Syntax { position: usize, message: String },
    #[error("{0}")]
    Evaluate(String),
}

#[derive(Debug)]
enum Expr {
    Or(Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Match(Match),
}

#[derive(Debug)]
struct Match {
    selector: Selector,
    op: Op,
    /// Whether the operator was negated (`!=`, `not in`, `is not empty`, ...).
    negated: bool,
}

#[derive(Debug)]
enum Op {
    Equal(Literal),
    IsEmpty,
    /// `V in Sel` and `Sel contains V` are the same test.
    Contains(Literal),
    Matches(Box<Regex>),
}

/// A literal as written: compared by text against strings and parsed against numbers and
/// booleans, as go-bexpr coerces the value to the field's type.
#[derive(Debug, Clone)]
struct Literal(String);

#[derive(Debug, Clone)]
struct Selector(Vec<String>);

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join("."))
    }
}

impl Filter {
    /// Parses an expression.
    pub fn parse(text: &str) -> Result<Self, FilterError> {
        let tokens = lex(text)?;
        let mut parser = Parser {
            tokens,
            next: 0,
            end: text.len(),
        };
        let root = parser.or()?;
        if let Some(token) = parser.peek() {
            return Err(parser.error_at(token.position, format!("unexpected {}", token.kind)));
        }
        Ok(Self { root })
    }

    /// Whether `value` (an item as its endpoint answers it in JSON) matches.
    pub fn matches(&self, value: &Value) -> Result<bool, FilterError> {
        self.root.evaluate(value)
    }
}

impl Expr {
    fn evaluate(&self, value: &Value) -> Result<bool, FilterError> {
        Ok(match self {
            Self::Or(left, right) => left.evaluate(value)? || right.evaluate(value)?,
            Self::And(left, right) => left.evaluate(value)? && right.evaluate(value)?,
            Self::Not(inner) => !inner.evaluate(value)?,
            Self::Match(matcher) => matcher.evaluate(value)?,
        })
    }
}

impl Match {
    fn evaluate(&self, root: &Value) -> Result<bool, FilterError> {
        let Some(field) = self.selector.select(root) else {
            // Nothing there: only the negative forms and `is empty` hold.
            return Ok(match self.op {
                Op::IsEmpty => !self.negated,
                _ => self.negated,
            });
        };
        let held = match &self.op {
            Op::Equal(literal) => self.equal(field, literal)?,
            Op::IsEmpty => match field {
                Value::Null => true,
                Value::String(text) => text.is_empty(),
                Value::Array(items) => items.is_empty(),
                Value::Object(map) => map.is_empty(),
                Value::Bool(_) | Value::Number(_) => {
                    return Err(self.cannot("is empty", field));
                }
            },
            Op::Contains(literal) => match field {
                Value::Array(items) => items
                    .iter()
                    .any(|item| literal.equals(item).unwrap_or(false)),
                Value::Object(map) => map.contains_key(&literal.0),
                Value::String(text) => text.contains(&literal.0),
                Value::Null => false,
                Value::Bool(_) | Value::Number(_) => {
                    return Err(self.cannot("in/contains", field));
                }
            },
            Op::Matches(regex) => match field {
                Value::String(text) => regex.is_match(text),
                Value::Null => false,
                _ => return Err(self.cannot("matches", field)),
            },
        };
        Ok(held != self.negated)
    }

    fn equal(&self, field: &Value, literal: &Literal) -> Result<bool, FilterError> {
        literal
            .equals(field)
            .ok_or_else(|| self.cannot("==", field))
    }

    fn cannot(&self, op: &str, field: &Value) -> FilterError {
        FilterError::Evaluate(format!(
            "selector {:?} is {}: {op} does not apply to it",
            self.selector.to_string(),
            kind_of(field)
        ))
    }
}

impl Literal {
    /// Whether a scalar field equals this literal read as the field's type; `None` if the field
    /// is not a scalar.
    fn equals(&self, field: &Value) -> Option<bool> {
        Some(match field {
            Value::String(text) => *text == self.0,
            Value::Bool(flag) => self.0.parse::<bool>().is_ok_and(|parsed| parsed == *flag),
            Value::Number(number) => match (number.as_i64(), number.as_u64()) {
                (Some(signed), _) => self.0.parse::<i64>().is_ok_and(|parsed| parsed == signed),
                (None, Some(unsigned)) => {
                    self.0.parse::<u64>().is_ok_and(|parsed| parsed == unsigned)
                }
                _ => number
                    .as_f64()
                    .zip(self.0.parse::<f64>().ok())
                    .is_some_and(|(field, parsed)| field == parsed),
            },
            Value::Null => false,
            Value::Array(_) | Value::Object(_) => return None,
        })
    }
}

impl Selector {
    /// The value the selector names, if any.
    fn select<'v>(&self, root: &'v Value) -> Option<&'v Value> {
        self.0
            .iter()
            .try_fold(root, |value, part| value.as_object()?.get(part))
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

#[derive(Debug, Clone, PartialEq)]
enum TokenKind {
    /// A bare word: a selector part, a keyword or a bare value.
    Word(String),
    /// A quoted or raw string, or a number.
    Text(String),
    Equal,
    NotEqual,
    Dot,
    OpenParen,
    CloseParen,
    OpenBracket,
    CloseBracket,
}

impl fmt::Display for TokenKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Word(word) => write!(f, "{word:?}"),
            Self::Text(text) => write!(f, "value {text:?}"),
            Self::Equal => f.write_str("\"==\""),
            Self::NotEqual => f.write_str("\"!=\""),
            Self::Dot => f.write_str("\".\""),
            Self::OpenParen => f.write_str("\"(\""),
            Self::CloseParen => f.write_str("\")\""),
            Self::OpenBracket => f.write_str("\"[\""),
            Self::CloseBracket => f.write_str("\"]\""),
        }
    }
}

#[derive(Debug, Clone)]
struct Token {
    kind: TokenKind,
    /// Byte offset in the expression, for errors.
    position: usize,
}

fn lex(text: &str) -> Result<Vec<Token>, FilterError> {
    let syntax = |position, message: String| FilterError::Syntax { position, message };
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((position, ch)) = chars.next() {
        let kind = match ch {
            c if c.is_whitespace() => continue,
            '(' => TokenKind::OpenParen,
            ')' => TokenKind::CloseParen,
            '[' => TokenKind::OpenBracket,
            ']' => TokenKind::CloseBracket,
            '.' => TokenKind::Dot,
            '=' | '!' => match chars.next() {
                Some((_, '=')) if ch == '=' => TokenKind::Equal,
                Some((_, '=')) => TokenKind::NotEqual,
                _ => return Err(syntax(position, format!("expected \"{ch}=\""))),
            },
            '"' => {
                let mut out = String::new();
                loop {
                    match chars.next() {
                        None => return Err(syntax(position, "unterminated string".to_owned())),
                        Some((_, '"')) => break,
                        Some((at, '\\')) => match chars.next() {
                            Some((_, 'n')) => out.push('\n'),
                            Some((_, 't')) => out.push('\t'),
                            Some((_, escaped @ ('"' | '\\'))) => out.push(escaped),
                            _ => return Err(syntax(at, "invalid escape in string".to_owned())),
                        },
                        Some((_, c)) => out.push(c),
                    }
                }
                TokenKind::Text(out)
            }
            '`' => {
                let mut out = String::new();
                loop {
                    match chars.next() {
                        None => {
                            return Err(syntax(position, "unterminated raw string".to_owned()));
                        }
                        Some((_, '`')) => break,
                        Some((_, c)) => out.push(c),
                    }
                }
                TokenKind::Text(out)
            }
            c if c.is_ascii_digit() || c == '-' => {
                let mut out = String::from(c);
                while let Some(&(_, next)) = chars.peek() {
                    if !(next.is_ascii_digit() || next == '.') {
                        break;
                    }
                    out.push(next);
                    chars.next();
                }
                if out == "-" || out.parse::<f64>().is_err() {
                    return Err(syntax(position, format!("invalid number {out:?}")));
                }
                TokenKind::Text(out)
            }
            c if c.is_alphabetic() || c == '_' => {
                let mut out = String::from(c);
                while let Some(&(_, next)) = chars.peek() {
                    if !(next.is_alphanumeric() || next == '_' || next == '-' || next == '/') {
                        break;
                    }
                    out.push(next);
                    chars.next();
                }
                TokenKind::Word(out)
            }
            other => return Err(syntax(position, format!("unexpected character {other:?}"))),
        };
        tokens.push(Token { kind, position });
    }
    Ok(tokens)
}

/// What an error expects after a selector.
const MATCH_OPERATOR: &str = "a match operator (==, !=, is, contains, matches)";

struct Parser {
    tokens: Vec<Token>,
    next: usize,
    /// The expression's length: where "unexpected end" is reported.
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.next)
    }

    fn peek_word(&self, offset: usize) -> Option<&str> {
        match self.tokens.get(self.next + offset).map(|token| &token.kind) {
            Some(TokenKind::Word(word)) => Some(word),
            _ => None,
        }
    }

    fn bump(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.next).cloned();
        self.next += 1;
        token
    }

    fn eat_word(&mut self, keyword: &str) -> bool {
        if self.peek_word(0) == Some(keyword) {
            self.next += 1;
            true
        } else {
            false
        }
    }

    fn error_at(&self, position: usize, message: String) -> FilterError {
        FilterError::Syntax { position, message }
    }

    fn unexpected(&self, expected: &str) -> FilterError {
        match self.peek() {
            Some(token) => self.error_at(
                token.position,
                format!("expected {expected}, found {}", token.kind),
            ),
            None => self.error_at(self.end, format!("expected {expected} at the end")),
        }
    }

    fn or(&mut self) -> Result<Expr, FilterError> {
        let mut left = self.and()?;
        while self.eat_word("or") {
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, FilterError> {
        let mut left = self.unary()?;
        while self.eat_word("and") {
            left = Expr::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, FilterError> {
        if self.eat_word("not") {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if matches!(self.peek().map(|t| &t.kind), Some(TokenKind::OpenParen)) {
            self.next += 1;
            let inner = self.or()?;
            match self.bump().map(|token| token.kind) {
                Some(TokenKind::CloseParen) => return Ok(inner),
                _ => {
                    self.next -= 1;
                    return Err(self.unexpected("\")\""));
                }
            }
        }
        self.matcher().map(Expr::Match)
    }

    /// One match: `V in Sel`, `V not in Sel`, or `Sel <op> ...`.
    fn matcher(&mut self) -> Result<Match, FilterError> {
        // A value followed by `in` / `not in` starts the membership forms.
        let value_first = match self.peek_word(1) {
            Some("in") => Some(false),
            Some("not") if self.peek_word(2) == Some("in") => Some(true),
            _ => None,
        };
        if let Some(negated) = value_first {
            let literal = self.literal()?;
            self.next += if negated { 2 } else { 1 };
            let selector = self.selector()?;
            return Ok(Match {
                selector,
                op: Op::Contains(literal),
                negated,
            });
        }
        let selector = self.selector()?;
        let (op, negated) = match self.bump().map(|token| token.kind) {
            Some(TokenKind::Equal) => (Op::Equal(self.literal()?), false),
            Some(TokenKind::NotEqual) => (Op::Equal(self.literal()?), true),
            Some(TokenKind::Word(word)) => match word.as_str() {
                "is" => {
                    let negated = self.eat_word("not");
                    if !self.eat_word("empty") {
                        return Err(self.unexpected("\"empty\""));
                    }
                    (Op::IsEmpty, negated)
                }
                "contains" => (Op::Contains(self.literal()?), false),
                "matches" => (self.regex()?, false),
                "not" if self.eat_word("contains") => (Op::Contains(self.literal()?), true),
                "not" if self.eat_word("matches") => (self.regex()?, true),
                _ => {
                    self.next -= 1;
                    return Err(self.unexpected(MATCH_OPERATOR));
                }
            },
            _ => {
                self.next -= 1;
                return Err(self.unexpected(MATCH_OPERATOR));
            }
        };
        Ok(Match {
            selector,
            op,
            negated,
        })
    }

    fn selector(&mut self) -> Result<Selector, FilterError> {
        let mut parts = Vec::new();
        match self.bump().map(|token| token.kind) {
            Some(TokenKind::Word(word)) => parts.push(word),
            _ => {
                self.next -= 1;
                return Err(self.unexpected("a selector"));
            }
        }
        loop {
            match self.peek().map(|token| &token.kind) {
                Some(TokenKind::Dot) => {
                    self.next += 1;
                    match self.bump().map(|token| token.kind) {
                        Some(TokenKind::Word(word)) => parts.push(word),
                        _ => {
                            self.next -= 1;
                            return Err(self.unexpected("a field name after \".\""));
                        }
                    }
                }
                Some(TokenKind::OpenBracket) => {
                    self.next += 1;
                    match self.bump().map(|token| token.kind) {
                        Some(TokenKind::Text(key)) => parts.push(key),
                        _ => {
                            self.next -= 1;
                            return Err(self.unexpected("a quoted key inside \"[]\""));
                        }
                    }
                    if !matches!(self.bump().map(|t| t.kind), Some(TokenKind::CloseBracket)) {
                        self.next -= 1;
                        return Err(self.unexpected("\"]\""));
                    }
                }
                _ => return Ok(Selector(parts)),
            }
        }
    }

    fn literal(&mut self) -> Result<Literal, FilterError> {
        match self.bump().map(|token| token.kind) {
            Some(TokenKind::Text(text) | TokenKind::Word(text)) => Ok(Literal(text)),
            _ => {
                self.next -= 1;
                Err(self.unexpected("a value"))
            }
        }
    }

    fn regex(&mut self) -> Result<Op, FilterError> {
        let position = self.peek().map_or(self.end, |token| token.position);
        let Literal(pattern) = self.literal()?;
        let regex = Regex::new(&pattern).map_err(|error| {
            self.error_at(position, format!("invalid regular expression: {error}"))
        })?;
        Ok(Op::Matches(Box::new(regex)))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn job() -> Value {
        json!({
            "ID": "web",
            "Status": "running",
            "Priority": 50,
            "Stop": false,
            "Datacenters": ["dc1", "dc2"],
            "Meta": { "team": "infra", "dotted.key": "yes" },
            "ParentID": "",
            "Periodic": null,
            "Version": 3,
        })
    }

    #[track_caller]
    fn check(expression: &str, expected: bool) {
        let filter = Filter::parse(expression).unwrap_or_else(|error| {
            panic!("{expression:?} does not parse: {error}");
        });
        assert_eq!(
            filter.matches(&job()),
            Ok(expected),
            "{expression:?} on the job"
        );
    }

    #[test]
    fn equality_reads_the_literal_as_the_fields_type() {
        check(r#"Status == "running""#, true);
        check(r#"Status != "running""#, false);
        check("Status == running", true);
        check("Priority == 50", true);
        check(r#"Priority == "50""#, true);
        check("Priority == 51", false);
        check("Stop == false", true);
        check("Stop == true", false);
        check("Status == `running`", true);
    }

    #[test]
    fn membership_looks_into_lists_maps_and_strings() {
        check(r#""dc1" in Datacenters"#, true);
        check(r#""dc3" in Datacenters"#, false);
        check(r#""dc3" not in Datacenters"#, true);
        check(r#"Datacenters contains "dc2""#, true);
        check(r#"Datacenters not contains "dc2""#, false);
        check(r#""team" in Meta"#, true);
        check(r#"Status contains "unn""#, true);
    }

    #[test]
    fn selectors_reach_into_maps() {
        check(r#"Meta.team == "infra""#, true);
        check(r#"Meta["dotted.key"] == "yes""#, true);
        check(r#"Meta.missing == "x""#, false);
        check(r#"Meta.missing != "x""#, true);
        check("Meta.missing is empty", true);
        check("Meta.missing is not empty", false);
    }

    #[test]
    fn emptiness_and_regular_expressions() {
        check("ParentID is empty", true);
        check("Periodic is empty", true);
        check("Datacenters is not empty", true);
        check(r#"ID matches "^w.b$""#, true);
        check(r#"ID not matches "^w""#, false);
    }

    #[test]
    fn boolean_operators_bind_as_nomads() {
        // `and` binds tighter than `or`.
        check(
            r#"Status == "dead" and Priority == 50 or Meta.team == "infra""#,
            true,
        );
        check(
            r#"Status == "dead" and (Priority == 50 or Meta.team == "infra")"#,
            false,
        );
        check(r#"not Status == "dead""#, true);
        check(r#"not (Status == "running" and Stop == false)"#, false);
    }

    #[test]
    fn malformed_expressions_are_named() {
        let error = |text: &str| Filter::parse(text).expect_err(text).to_string();
        assert_eq!(error(r#"Status == "running"#), "10: unterminated string");
        assert_eq!(
            error("Status running"),
            r#"7: expected a match operator (==, !=, is, contains, matches), found "running""#
        );
        assert_eq!(
            error("(Status == running"),
            r#"18: expected ")" at the end"#
        );
        assert_eq!(
            error("Status is full"),
            r#"10: expected "empty", found "full""#
        );
        assert!(
            error(r#"ID matches "(""#).starts_with("11: invalid regular expression: "),
            "the regex error names its position"
        );
        assert_eq!(error("Status = 1"), r#"7: expected "==""#);
        // A selector is a bare path, never a string.
        assert_eq!(
            error("`Status` == `running`"),
            r#"0: expected a selector, found value "Status""#
        );
        assert_eq!(error(r#"Status == "a" "b""#), r#"14: unexpected value "b""#);
    }

    #[test]
    fn a_match_that_cannot_apply_is_an_error() {
        let filter = Filter::parse(r#"Datacenters == "dc1""#).expect("parses");
        assert_eq!(
            filter.matches(&job()),
            Err(FilterError::Evaluate(
                "selector \"Datacenters\" is a list: == does not apply to it".to_owned()
            ))
        );
    }
}
