//! HCL2 input variables and locals: `variable "name" { type, default, description }`,
//! `variables { name = default }`, `locals { name = expr }`, and the values given from outside.
//!
//! A variable's value is, from weakest to strongest (Nomad, as Packer and Terraform): its
//! `default`, the `NOMAD_VAR_<name>` environment variable, the `-var-file` files in order, the
//! `-var name=value` flags in order. A declared variable left without a value is an error naming
//! it; a `-var` or var-file value for a variable nobody declared is an error too.
//!
//! Values from flags and the environment are strings: a `string` or untyped variable takes them
//! as they are, any other type parses them as an HCL expression (`-var 'dcs=["a","b"]'`).

use std::collections::BTreeMap;

use hcl::Value;
use hcl::edit::expr::Expression;
use hcl::edit::structure::{Block, Body, Structure};

use super::ParseConfig;
use super::body::{
    BlockReader, Schema, attribute_offset, block_offset, labels, no_labels, single_label,
    value_to_bool,
};
use super::error::{JobspecError, Location, SourceFile};
use super::eval::{Evaluator, kind_of, one_line, parse_number};

const VARIABLE_SCHEMA: Schema<'static> = Schema {
    arguments: &["default", "description", "sensitive", "type"],
    blocks: &["validation"],
};

const VALIDATION_SCHEMA: Schema<'static> = Schema {
    arguments: &["condition", "error_message"],
    blocks: &[],
};

/// The type constraint of a variable.
#[derive(Clone, Debug, PartialEq)]
enum VarType {
    Any,
    String,
    Number,
    Bool,
    List(Box<VarType>),
    Map(Box<VarType>),
}

impl VarType {
    fn parse(expr: &Expression) -> Option<Self> {
        match expr {
            Expression::Variable(name) => match name.as_str() {
                "any" => Some(Self::Any),
                "string" => Some(Self::String),
                "number" => Some(Self::Number),
                "bool" => Some(Self::Bool),
                _ => None,
            },
            Expression::FuncCall(call) => {
                let element = match call.args.iter().next() {
                    Some(arg) => Self::parse(arg)?,
                    None => Self::Any,
                };
                match call.name.name.as_str() {
                    "list" | "set" => Some(Self::List(Box::new(element))),
                    "map" => Some(Self::Map(Box::new(element))),
                    // Structural types are accepted but not checked field by field.
                    "object" | "tuple" => Some(Self::Any),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    fn name(&self) -> String {
        match self {
            Self::Any => "any".to_owned(),
            Self::String => "string".to_owned(),
            Self::Number => "number".to_owned(),
            Self::Bool => "bool".to_owned(),
            Self::List(element) => format!("list({})", element.name()),
            Self::Map(element) => format!("map({})", element.name()),
        }
    }

    /// Converts `value` to this type as HCL converts, or says why it cannot.
    fn convert(&self, value: Value) -> Result<Value, String> {
        let mismatch = |value: &Value| format!("expected {}, got {}", self.name(), kind_of(value));
        match self {
            Self::Any => Ok(value),
            Self::String => match value {
                Value::String(_) => Ok(value),
                Value::Number(number) => Ok(Value::String(number.to_string())),
                Value::Bool(flag) => Ok(Value::String(flag.to_string())),
                other => Err(mismatch(&other)),
            },
            Self::Number => match &value {
                Value::Number(_) => Ok(value),
                Value::String(text) => parse_number(text)
                    .map(Value::Number)
                    .ok_or_else(|| mismatch(&value)),
                other => Err(mismatch(other)),
            },
            Self::Bool => value_to_bool(&value)
                .map(Value::Bool)
                .ok_or_else(|| mismatch(&value)),
            Self::List(element) => match value {
                Value::Array(items) => items
                    .into_iter()
                    .map(|item| element.convert(item))
                    .collect::<Result<Vec<Value>, String>>()
                    .map(Value::Array),
                other => Err(mismatch(&other)),
            },
            Self::Map(element) => match value {
                Value::Object(map) => map
                    .into_iter()
                    .map(|(key, item)| element.convert(item).map(|item| (key, item)))
                    .collect::<Result<hcl::Map<String, Value>, String>>()
                    .map(Value::Object),
                other => Err(mismatch(&other)),
            },
        }
    }
}

struct Declaration {
    var_type: VarType,
    value: Option<Value>,
    offset: usize,
    validations: Vec<Validation>,
}

/// A `validation { condition, error_message }` block of a variable.
struct Validation {
    condition: Expression,
    error_message: String,
}

/// The values of `var.*` and `local.*` for one job file.
pub(crate) struct Resolved {
    pub vars: hcl::Map<String, Value>,
    pub locals: hcl::Map<String, Value>,
}

/// Reads the declarations in `file`, applies the values of `config`, evaluates the locals.
pub(crate) fn resolve(
    file: &BlockReader<'_, '_>,
    config: &ParseConfig,
    var_file_texts: &[(String, String)],
) -> Result<Resolved, JobspecError> {
    let source = &file.decoder.eval.source;
    let mut declarations: BTreeMap<String, Declaration> = BTreeMap::new();
    let mut declare = |name: String, declaration: Declaration| -> Result<(), JobspecError> {
        if let Some(previous) = declarations.get(&name) {
            let previous = source.location(previous.offset);
            return Err(source.error(
                declaration.offset,
                format!(
                    "duplicate variable \"{name}\"; it was already declared at {}:{}",
                    previous.line, previous.column
                ),
            ));
        }
        declarations.insert(name, declaration);
        Ok(())
    };
    for structure in file.body.iter() {
        let Structure::Block(block) = structure else {
            continue;
        };
        match block.ident.as_str() {
            "variable" => {
                let (name, declaration) = declare_variable(file, block)?;
                declare(name, declaration)?;
            }
            "variables" => {
                labels(file, block, &[])?;
                for attribute in block.body.attributes() {
                    let value = file.decoder.eval.eval(&attribute.value)?;
                    declare(
                        attribute.key.as_str().to_owned(),
                        Declaration {
                            var_type: VarType::Any,
                            value: Some(value),
                            offset: attribute_offset(attribute),
                            validations: Vec::new(),
                        },
                    )?;
                }
                if let Some(inner) = block.body.blocks().next() {
                    return Err(file.error(
                        block_offset(inner),
                        "a variables block holds only arguments: name = default",
                    ));
                }
            }
            _ => {}
        }
    }

    for (env_name, text) in &config.env {
        let Some(name) = env_name.strip_prefix("NOMAD_VAR_") else {
            continue;
        };
        // Nomad ignores environment values for variables the file does not declare.
        if let Some(declaration) = declarations.get_mut(name) {
            declaration.value = Some(value_from_text(name, text, &declaration.var_type)?);
        }
    }
    for (path, text) in var_file_texts {
        apply_var_file(path, text, &mut declarations)?;
    }
    for (name, text) in &config.vars {
        let Some(declaration) = declarations.get_mut(name) else {
            return Err(JobspecError::Decode {
                location: source.location(0),
                message: format!(
                    "-var {name}: undefined variable \"{name}\"; declare it with a variable \"{name}\" {{}} block"
                ),
            });
        };
        declaration.value = Some(value_from_text(name, text, &declaration.var_type)?);
    }

    let mut vars = hcl::Map::new();
    let mut validations = Vec::new();
    for (name, declaration) in declarations {
        let Some(value) = declaration.value else {
            return Err(source.error(
                declaration.offset,
                format!(
                    "variable \"{name}\" has no value; set it with -var {name}=..., a -var-file, NOMAD_VAR_{name} or a default"
                ),
            ));
        };
        let value = declaration.var_type.convert(value).map_err(|message| {
            source.error(
                declaration.offset,
                format!("invalid value for variable \"{name}\": {message}"),
            )
        })?;
        vars.insert(name.clone(), value);
        validations.extend(
            declaration
                .validations
                .into_iter()
                .map(|validation| (name.clone(), validation)),
        );
    }
    check_validations(file, &vars, &validations)?;
    let locals = resolve_locals(file, &vars)?;
    Ok(Resolved { vars, locals })
}

fn declare_variable(
    file: &BlockReader<'_, '_>,
    block: &Block,
) -> Result<(String, Declaration), JobspecError> {
    let name = single_label(file, block, "name")?;
    let variable = file.child(
        block,
        format!("variable {name:?}"),
        format!("<variable {name}>"),
        VARIABLE_SCHEMA,
    )?;
    let var_type = match variable.attribute("type") {
        None => VarType::Any,
        Some(attribute) => VarType::parse(&attribute.value).ok_or_else(|| {
            file.decoder.eval.error(
                &attribute.value,
                format!(
                    "invalid type for variable \"{name}\"; expected string, number, bool, any, list(...), set(...), map(...), object(...) or tuple(...)"
                ),
            )
        })?,
    };
    variable.string("description", "")?;
    variable.bool("sensitive", "")?;
    let value = variable.value("default", "")?.map(|(value, _)| value);
    let mut validations = Vec::new();
    for validation_block in variable.blocks("validation") {
        no_labels(&variable, validation_block)?;
        let validation = variable.child(
            validation_block,
            format!("validation of variable {name:?}"),
            format!("<variable {name}>.validation"),
            VALIDATION_SCHEMA,
        )?;
        let Some(condition) = validation.attribute("condition") else {
            return Err(validation.error(
                validation.offset,
                format!("{} needs a condition", validation.what),
            ));
        };
        validations.push(Validation {
            condition: condition.value.clone(),
            error_message: validation
                .string("error_message", "")?
                .unwrap_or_else(|| "the validation condition is false".to_owned()),
        });
    }
    Ok((
        name,
        Declaration {
            var_type,
            value,
            offset: block_offset(block),
            validations,
        },
    ))
}

/// Evaluates the `validation` conditions of the variables against their final values.
fn check_validations(
    file: &BlockReader<'_, '_>,
    vars: &hcl::Map<String, Value>,
    validations: &[(String, Validation)],
) -> Result<(), JobspecError> {
    if validations.is_empty() {
        return Ok(());
    }
    let mut evaluator = Evaluator::new(file.decoder.eval.source.clone());
    evaluator.set_variables(vars.clone(), hcl::Map::new());
    for (name, validation) in validations {
        match evaluator.eval(&validation.condition)? {
            Value::Bool(true) => {}
            Value::Bool(false) => {
                return Err(evaluator.error(
                    &validation.condition,
                    format!(
                        "invalid value for variable \"{name}\": {}",
                        one_line(&validation.error_message)
                    ),
                ));
            }
            other => {
                return Err(evaluator.error(
                    &validation.condition,
                    format!(
                        "validation condition of variable \"{name}\" must be a bool, got {}",
                        kind_of(&other)
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// A value given as text (a `-var` flag or an environment variable).
fn value_from_text(name: &str, text: &str, var_type: &VarType) -> Result<Value, JobspecError> {
    if matches!(var_type, VarType::String | VarType::Any) {
        return Ok(Value::String(text.to_owned()));
    }
    let file_name = format!("<value for var.{name}>");
    let source = SourceFile {
        name: &file_name,
        text,
    };
    let expr = hcl::edit::parser::parse_expr(text).map_err(|error| JobspecError::Decode {
        location: Location {
            file: file_name.clone(),
            line: error.location().line(),
            column: error.location().column(),
        },
        message: format!(
            "invalid value for variable \"{name}\": {}",
            one_line(error.message())
        ),
    })?;
    let evaluator = Evaluator::new(source.clone());
    let value = evaluator.eval(&expr)?;
    var_type.convert(value).map_err(|message| {
        source.error(
            0,
            format!("invalid value for variable \"{name}\": {message}"),
        )
    })
}

fn apply_var_file(
    path: &str,
    text: &str,
    declarations: &mut BTreeMap<String, Declaration>,
) -> Result<(), JobspecError> {
    if path.ends_with(".json") {
        return apply_json_var_file(path, text, declarations);
    }
    let source = SourceFile { name: path, text };
    let body: Body = hcl::edit::parser::parse_body(text).map_err(|error| JobspecError::Syntax {
        location: Location {
            file: path.to_owned(),
            line: error.location().line(),
            column: error.location().column(),
        },
        message: one_line(error.message()),
    })?;
    let evaluator = Evaluator::new(source.clone());
    for structure in body.iter() {
        match structure {
            Structure::Attribute(attribute) => {
                let name = attribute.key.as_str();
                let Some(declaration) = declarations.get_mut(name) else {
                    return Err(source.error(
                        attribute_offset(attribute),
                        format!(
                            "undefined variable \"{name}\" in var file; declare it with a variable \"{name}\" {{}} block"
                        ),
                    ));
                };
                let value = evaluator.eval(&attribute.value)?;
                declaration.value = Some(value);
            }
            Structure::Block(block) => {
                return Err(source.error(
                    block_offset(block),
                    format!(
                        "unsupported block \"{}\" in var file; a var file holds only name = value arguments",
                        block.ident.as_str()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// A var file in JSON: one object whose keys are variable names (Nomad accepts `.json` var files).
fn apply_json_var_file(
    path: &str,
    text: &str,
    declarations: &mut BTreeMap<String, Declaration>,
) -> Result<(), JobspecError> {
    let values: hcl::Map<String, Value> =
        serde_json::from_str(text).map_err(|error| JobspecError::Syntax {
            location: Location {
                file: path.to_owned(),
                line: error.line().max(1),
                column: error.column().max(1),
            },
            message: format!("a JSON var file must be one object of variable values: {error}"),
        })?;
    for (name, value) in values {
        let Some(declaration) = declarations.get_mut(&name) else {
            // serde_json keeps no positions once parsed; find the key's first mention instead.
            let offset = text.find(&format!("\"{name}\"")).unwrap_or(0);
            return Err(SourceFile { name: path, text }.error(
                offset,
                format!(
                    "undefined variable \"{name}\" in var file; declare it with a variable \"{name}\" {{}} block"
                ),
            ));
        };
        declaration.value = Some(value);
    }
    Ok(())
}

/// Evaluates every `locals` block's arguments; a local may use variables and other locals.
fn resolve_locals(
    file: &BlockReader<'_, '_>,
    vars: &hcl::Map<String, Value>,
) -> Result<hcl::Map<String, Value>, JobspecError> {
    let mut pending = Vec::new();
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for block in file.body.get_blocks("locals") {
        labels(file, block, &[])?;
        if let Some(inner) = block.body.blocks().next() {
            return Err(file.error(
                block_offset(inner),
                "a locals block holds only arguments: name = expression",
            ));
        }
        for attribute in block.body.attributes() {
            let name = attribute.key.as_str();
            let offset = attribute_offset(attribute);
            if let Some(previous) = seen.insert(name, offset) {
                let previous = file.decoder.eval.source.location(previous);
                return Err(file.error(
                    offset,
                    format!(
                        "duplicate local \"{name}\"; it was already defined at {}:{}",
                        previous.line, previous.column
                    ),
                ));
            }
            pending.push(attribute);
        }
    }
    let mut locals = hcl::Map::new();
    // Evaluate in passes until nothing is left; a pass that resolves nothing reports the first
    // local that still fails (an undefined name or a cycle).
    while !pending.is_empty() {
        let n_resolved_before = locals.len();
        let mut evaluator = Evaluator::new(file.decoder.eval.source.clone());
        evaluator.set_variables(vars.clone(), locals.clone());
        let mut still_pending = Vec::new();
        let mut first_error = None;
        for attribute in pending {
            match evaluator.eval(&attribute.value) {
                Ok(value) => {
                    locals.insert(attribute.key.as_str().to_owned(), value);
                }
                Err(error) => {
                    first_error.get_or_insert(error);
                    still_pending.push(attribute);
                }
            }
        }
        if let Some(error) = first_error
            && locals.len() == n_resolved_before
        {
            return Err(error);
        }
        pending = still_pending;
    }
    Ok(locals)
}
