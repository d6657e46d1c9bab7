//! Evaluating the expressions of a job file into values.
//!
//! Nomad's HCL2 (a fork of hashicorp/hcl) evaluates `var.*` and `local.*` references when the job
//! is parsed but leaves every other interpolation for the client to fill in at run time:
//! `"${attr.kernel.name}"`, `"${NOMAD_PORT_http}"`, `"${meta.rack}"`, `"${env["HOME"]}"` stay
//! literal strings. This module does the same: an interpolation whose variables all have a root
//! of `var` or `local` (or that has no variables, like `${upper("x")}`) is evaluated, any other is
//! copied from the source text unchanged.
//!
//! Invariant: evaluation never panics; every failure is a `JobspecError::Decode` at the offending
//! expression.

use hcl::Value;
use hcl::edit::Span;
use hcl::edit::expr::{Expression, ForExpr, ObjectKey};
use hcl::edit::template::{Element, Template};
use hcl::edit::visit::{self, Visit};
use hcl::edit::visit_mut::{self as visit_mut, VisitMut};
use hcl::eval::Evaluate;

use super::body::value_to_bool;
use super::error::{JobspecError, SourceFile};
use super::{budget, functions, operators};

/// The roots Nomad evaluates when it parses a job; everything else is left to run time.
const PARSE_TIME_ROOTS: &[&str] = &["var", "local"];

/// Evaluates expressions of one source file against the job's variables and locals.
pub(crate) struct Evaluator<'src> {
    pub source: SourceFile<'src>,
    context: hcl::eval::Context<'static>,
    /// The names `var.<name>` and `local.<name>` may use, once known.
    names: Option<(Vec<String>, Vec<String>)>,
    /// Where the innermost expression being evaluated that has a place in the source starts:
    /// an error in a value a `for` substituted (which has none) is reported there.
    enclosing: std::cell::Cell<usize>,
}

impl<'src> Evaluator<'src> {
    pub fn new(source: SourceFile<'src>) -> Self {
        let mut context = hcl::eval::Context::new();
        functions::declare_all(&mut context);
        Self {
            source,
            context,
            names: None,
            enclosing: std::cell::Cell::new(0),
        }
    }

    /// Makes `var.<name>` and `local.<name>` resolve to the given objects.
    pub fn set_variables(
        &mut self,
        vars: hcl::Map<String, Value>,
        locals: hcl::Map<String, Value>,
    ) {
        self.names = Some((
            vars.keys().cloned().collect(),
            locals.keys().cloned().collect(),
        ));
        self.context.declare_var("var", Value::Object(vars));
        self.context.declare_var("local", Value::Object(locals));
    }

    pub fn offset_of(expr: &Expression) -> usize {
        expr.span().map_or(0, |span| span.start)
    }

    pub fn error(&self, expr: &Expression, message: impl Into<String>) -> JobspecError {
        let offset = expr.span().map_or(self.enclosing.get(), |span| span.start);
        self.source.error(offset, message)
    }

    pub fn eval(&self, expr: &Expression) -> Result<Value, JobspecError> {
        let Some(span) = expr.span() else {
            return self.eval_here(expr);
        };
        let outer = self.enclosing.replace(span.start);
        let result = self.eval_here(expr);
        self.enclosing.set(outer);
        result
    }

    fn eval_here(&self, expr: &Expression) -> Result<Value, JobspecError> {
        budget::check_time().map_err(|message| self.error(expr, message))?;
        match expr {
            Expression::Null(_) => Ok(Value::Null),
            Expression::Bool(value) => Ok(Value::Bool(*value.value())),
            Expression::Number(value) => Ok(Value::Number(*value.value())),
            Expression::String(value) => Ok(Value::String(value.value().clone())),
            Expression::Array(array) => {
                let values: Result<Vec<Value>, JobspecError> =
                    array.iter().map(|element| self.eval(element)).collect();
                Ok(Value::Array(values?))
            }
            Expression::Object(object) => {
                let mut map = hcl::Map::new();
                for (key, value) in object.iter() {
                    let key = match key {
                        ObjectKey::Ident(ident) => ident.as_str().to_owned(),
                        ObjectKey::Expression(key_expr) => match self.eval(key_expr)? {
                            Value::String(text) => text,
                            Value::Number(number) => number.to_string(),
                            Value::Bool(flag) => flag.to_string(),
                            other => {
                                return Err(self.error(
                                    key_expr,
                                    format!("object key must be a string, got {}", kind_of(&other)),
                                ));
                            }
                        },
                    };
                    map.insert(key, self.eval(value.expr())?);
                }
                Ok(Value::Object(map))
            }
            Expression::ForExpr(for_expr) => self.eval_for(expr, for_expr),
            Expression::StringTemplate(template) => self.render(expr, template),
            Expression::HeredocTemplate(heredoc) => self.render(expr, &heredoc.template),
            Expression::Parenthesis(inner) => self.eval(inner.inner()),
            Expression::UnaryOp(operation) => {
                let value = self.eval(&operation.expr)?;
                operators::unary(*operation.operator.value(), &value)
                    .map_err(|message| self.error(expr, message))
            }
            Expression::BinaryOp(operation) => {
                let lhs = self.eval(&operation.lhs_expr)?;
                let rhs = self.eval(&operation.rhs_expr)?;
                operators::binary(*operation.operator.value(), &lhs, &rhs)
                    .map_err(|message| self.error(expr, message))
            }
            Expression::Conditional(conditional) => {
                let condition = self.eval(&conditional.cond_expr)?;
                match value_to_bool(&condition) {
                    Some(true) => self.eval(&conditional.true_expr),
                    Some(false) => self.eval(&conditional.false_expr),
                    None => Err(self.error(
                        &conditional.cond_expr,
                        format!("condition must be a bool, got {}", kind_of(&condition)),
                    )),
                }
            }
            _ => self.eval_with_hcl(expr),
        }
    }

    /// Evaluates a `for` expression one element at a time, so that each result is held to the
    /// budget as it is made (hcl-rs would build the whole collection first: a nested `for` over a
    /// large list is quadratic). The bound variables are substituted into a copy of each
    /// expression as literals, then evaluated as any other expression.
    fn eval_for(&self, expr: &Expression, for_expr: &ForExpr) -> Result<Value, JobspecError> {
        let collection = self.eval(&for_expr.intro.collection_expr)?;
        let elements: Vec<(Value, Value)> = match collection {
            Value::Array(items) => items
                .into_iter()
                .enumerate()
                .map(|(idx, item)| (Value::from(idx as u64), item))
                .collect(),
            Value::Object(map) => map
                .into_iter()
                .map(|(key, value)| (Value::from(key), value))
                .collect(),
            other => {
                return Err(self.error(
                    &for_expr.intro.collection_expr,
                    format!(
                        "a for expression needs a list or an object, got {}",
                        kind_of(&other)
                    ),
                ));
            }
        };
        let key_var = for_expr.intro.key_var.as_ref().map(|name| name.as_str());
        let value_var = for_expr.intro.value_var.as_str();
        let bind = |template: &Expression, key: &Value, value: &Value| {
            let mut bound = template.clone();
            Substitute {
                name: value_var,
                value: Expression::from(hcl::Expression::from(value.clone())),
            }
            .visit_expr_mut(&mut bound);
            if let Some(key_var) = key_var {
                Substitute {
                    name: key_var,
                    value: Expression::from(hcl::Expression::from(key.clone())),
                }
                .visit_expr_mut(&mut bound);
            }
            bound
        };
        let mut array = Vec::new();
        let mut object = hcl::Map::new();
        for (key, value) in &elements {
            budget::charge(8).map_err(|message| self.error(expr, message))?;
            if let Some(cond) = &for_expr.cond {
                let keep = self.eval(&bind(&cond.expr, key, value))?;
                match value_to_bool(&keep) {
                    Some(true) => {}
                    Some(false) => continue,
                    None => {
                        return Err(self.error(
                            &cond.expr,
                            format!("a for condition must be a bool, got {}", kind_of(&keep)),
                        ));
                    }
                }
            }
            let result = self.eval(&bind(&for_expr.value_expr, key, value))?;
            budget::charge(budget::size_of(&result))
                .map_err(|message| self.error(expr, message))?;
            let Some(key_expr) = &for_expr.key_expr else {
                array.push(result);
                continue;
            };
            let object_key = match self.eval(&bind(key_expr, key, value))? {
                Value::String(text) => text,
                Value::Number(number) => number.to_string(),
                Value::Bool(flag) => flag.to_string(),
                other => {
                    return Err(self.error(
                        key_expr,
                        format!("a for key must be a string, got {}", kind_of(&other)),
                    ));
                }
            };
            if for_expr.grouping {
                match object
                    .entry(object_key)
                    .or_insert_with(|| Value::Array(Vec::new()))
                {
                    Value::Array(group) => group.push(result),
                    _ => return Err(self.error(expr, "a grouped for key holds a non-list")),
                }
            } else if object.insert(object_key.clone(), result).is_some() {
                return Err(self.error(
                    key_expr,
                    format!("duplicate key {object_key:?} in a for expression; use ... to group"),
                ));
            }
        }
        let made = if for_expr.key_expr.is_some() {
            Value::Object(object)
        } else {
            Value::Array(array)
        };
        budget::check_size(budget::size_of(&made)).map_err(|message| self.error(expr, message))?;
        Ok(made)
    }

    /// Renders a template, keeping runtime interpolations literal.
    fn render(&self, expr: &Expression, template: &Template) -> Result<Value, JobspecError> {
        if template
            .iter()
            .any(|element| matches!(element, Element::Directive(_)))
        {
            // `%{ if }` / `%{ for }` directives are evaluated whole; they may only use variables.
            return self.eval_with_hcl(expr);
        }
        let elements: Vec<&Element> = template.iter().collect();
        // A template that is one interpolation yields its value unconverted, as in HCL.
        if let [Element::Interpolation(interpolation)] = elements.as_slice()
            && is_parse_time(&interpolation.expr)
        {
            return self.eval(&interpolation.expr);
        }
        let mut rendered = String::new();
        // Set by `~}`: the next literal loses its leading whitespace.
        let mut strip_next = false;
        for element in elements {
            match element {
                Element::Literal(literal) => {
                    let text = literal.value().as_str();
                    let text = if strip_next { text.trim_start() } else { text };
                    budget::check_size(rendered.len().saturating_add(text.len()))
                        .map_err(|message| self.error(expr, message))?;
                    rendered.push_str(text);
                    strip_next = false;
                }
                Element::Interpolation(interpolation) => {
                    if is_parse_time(&interpolation.expr) {
                        // `${~` and `~}` strip the whitespace around an evaluated interpolation.
                        if interpolation.strip.strip_start() {
                            rendered.truncate(rendered.trim_end().len());
                        }
                        let value = self.eval(&interpolation.expr)?;
                        let text = self.interpolated_text(&interpolation.expr, value)?;
                        budget::check_size(rendered.len().saturating_add(text.len()))
                            .map_err(|message| self.error(expr, message))?;
                        rendered.push_str(&text);
                        strip_next = interpolation.strip.strip_end();
                    } else {
                        let text = self.source_text(interpolation.span(), &interpolation.expr);
                        budget::check_size(rendered.len().saturating_add(text.len()))
                            .map_err(|message| self.error(expr, message))?;
                        rendered.push_str(text);
                    }
                }
                Element::Directive(_) => {}
            }
        }
        budget::charge(rendered.len()).map_err(|message| self.error(expr, message))?;
        Ok(Value::String(rendered))
    }

    /// The original text of a runtime interpolation, `${...}` included.
    fn source_text(&self, span: Option<std::ops::Range<usize>>, expr: &Expression) -> &'src str {
        let text = self.source.text;
        span.and_then(|span| text.get(span)).unwrap_or_else(|| {
            // Spans always come from the parser; fall back to the expression alone if not.
            expr.span()
                .and_then(|span| text.get(span))
                .unwrap_or_default()
        })
    }

    fn interpolated_text(&self, expr: &Expression, value: Value) -> Result<String, JobspecError> {
        match value {
            Value::String(text) => Ok(text),
            Value::Number(number) => Ok(number.to_string()),
            Value::Bool(flag) => Ok(flag.to_string()),
            other => Err(self.error(
                expr,
                format!("cannot interpolate {} into a string", kind_of(&other)),
            )),
        }
    }

    fn eval_with_hcl(&self, expr: &Expression) -> Result<Value, JobspecError> {
        self.check_references(expr)?;
        let converted: hcl::Expression = expr.clone().into();
        // hcl-rs's arithmetic can overflow inside function arguments and `for` bodies, which the
        // jobspec does not evaluate itself; a panic there becomes an error, never a crash.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            converted.evaluate(&self.context)
        }));
        let Ok(result) = outcome else {
            return Err(self.error(expr, "expression cannot be evaluated: arithmetic overflow"));
        };
        // What hcl-rs made itself (`for` expressions, directives) counts against the budget too.
        if let Ok(value) = &result {
            budget::charge(budget::size_of(value)).map_err(|message| self.error(expr, message))?;
        }
        result.map_err(|error| {
            let message = match error.kind() {
                hcl::eval::ErrorKind::UndefinedVar(name) => {
                    let text = expr
                        .span()
                        .and_then(|span| self.source.text.get(span))
                        .unwrap_or_default();
                    format!(
                        "unknown variable \"{name}\"; only var and local can be used outside a string (write \"${{{text}}}\" to leave it to the client)"
                    )
                }
                other => other.to_string(),
            };
            self.error(expr, one_line(&message))
        })
    }

    /// Checks that every `var.<name>` and `local.<name>` in `expr` names something declared, for
    /// an error that says which names exist.
    fn check_references(&self, expr: &Expression) -> Result<(), JobspecError> {
        let Some((var_names, local_names)) = &self.names else {
            return Ok(());
        };
        let mut collector = ReferenceCollector::default();
        collector.visit_expr(expr);
        for (root, name, offset) in collector.references {
            let (known, kind) = if root == "var" {
                (var_names, "variables")
            } else {
                (local_names, "locals")
            };
            if !known.contains(&name) {
                let declared = if known.is_empty() {
                    format!("no {kind} are declared")
                } else {
                    format!("declared {kind}: {}", known.join(", "))
                };
                return Err(self.source.error(
                    offset,
                    format!("undefined {root} \"{root}.{name}\"; {declared}"),
                ));
            }
        }
        Ok(())
    }
}

/// Replaces the variable `name` by a literal, except where a nested `for` binds the same name.
struct Substitute<'a> {
    name: &'a str,
    value: Expression,
}

impl VisitMut for Substitute<'_> {
    fn visit_expr_mut(&mut self, expr: &mut Expression) {
        if let Expression::Variable(variable) = expr
            && variable.as_str() == self.name
        {
            *expr = self.value.clone();
            return;
        }
        visit_mut::visit_expr_mut(self, expr);
    }

    fn visit_for_expr_mut(&mut self, for_expr: &mut ForExpr) {
        let intro = &for_expr.intro;
        let shadows = intro.value_var.as_str() == self.name
            || intro
                .key_var
                .as_ref()
                .is_some_and(|key_var| key_var.as_str() == self.name);
        if shadows {
            self.visit_expr_mut(&mut for_expr.intro.collection_expr);
        } else {
            visit_mut::visit_for_expr_mut(self, for_expr);
        }
    }
}

/// True if every variable in `expr` is rooted at `var` or `local` (or is bound by a `for`
/// expression inside it).
pub(crate) fn is_parse_time(expr: &Expression) -> bool {
    let mut collector = RootCollector::default();
    collector.visit_expr(expr);
    collector
        .roots
        .iter()
        .all(|root| PARSE_TIME_ROOTS.contains(&root.as_str()) || collector.bound.contains(root))
}

#[derive(Default)]
struct RootCollector {
    roots: Vec<String>,
    /// Names a `for` expression binds (`[for k, v in ...]`); not scoped, which only errs
    /// towards evaluating.
    bound: Vec<String>,
}

impl Visit for RootCollector {
    fn visit_expr(&mut self, expr: &Expression) {
        if let Expression::Variable(variable) = expr {
            self.roots.push(variable.as_str().to_owned());
        }
        visit::visit_expr(self, expr);
    }

    fn visit_for_intro(&mut self, intro: &hcl::edit::expr::ForIntro) {
        if let Some(key_var) = &intro.key_var {
            self.bound.push(key_var.as_str().to_owned());
        }
        self.bound.push(intro.value_var.as_str().to_owned());
        visit::visit_for_intro(self, intro);
    }
}

/// Collects `var.<name>` and `local.<name>` references with their positions.
#[derive(Default)]
struct ReferenceCollector {
    references: Vec<(String, String, usize)>,
}

impl Visit for ReferenceCollector {
    fn visit_traversal(&mut self, traversal: &hcl::edit::expr::Traversal) {
        if let Expression::Variable(root) = &traversal.expr
            && PARSE_TIME_ROOTS.contains(&root.as_str())
            && let Some(first) = traversal.operators.first()
            && let hcl::edit::expr::TraversalOperator::GetAttr(name) = first.value()
        {
            self.references.push((
                root.as_str().to_owned(),
                name.as_str().to_owned(),
                traversal.span().map_or(0, |span| span.start),
            ));
        }
        visit::visit_traversal(self, traversal);
    }
}

/// Parses a number as HCL writes one: an integer if it is one, else a float.
pub(crate) fn parse_number(text: &str) -> Option<hcl::Number> {
    let text = text.trim();
    if let Ok(integer) = text.parse::<i64>() {
        return Some(hcl::Number::from(integer));
    }
    text.parse::<f64>()
        .ok()
        .filter(|float| float.is_finite())
        .and_then(hcl::Number::from_f64)
}

/// A human name for the kind of a value, for error messages.
pub(crate) fn kind_of(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(flag) => format!("bool {flag}"),
        Value::Number(number) => format!("number {number}"),
        Value::String(text) => format!("string {text:?}"),
        Value::Array(_) => "a list".to_owned(),
        Value::Object(_) => "an object".to_owned(),
    }
}

pub(crate) fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}
