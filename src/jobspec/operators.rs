//! HCL's unary and binary operators with checked arithmetic.
//!
//! hcl-rs's own evaluator overflows on large integers (a panic in debug builds, a wrong answer in
//! release), so the jobspec computes operators itself: integers while they fit, floats beyond,
//! and an error, never a panic, for a result out of range or a division by zero.

use hcl::Value;
use hcl::edit::expr::{BinaryOperator, UnaryOperator};

use super::body::value_to_bool;
use super::eval::{kind_of, parse_number};

/// A number operand: exact while it is an integer.
#[derive(Clone, Copy)]
enum Operand {
    Integer(i64),
    Float(f64),
}

impl Operand {
    fn from_value(value: &Value) -> Option<Self> {
        let number = match value {
            Value::Number(number) => *number,
            // HCL converts number-like strings where a number is expected.
            Value::String(text) => parse_number(text)?,
            _ => return None,
        };
        Some(match number.as_i64() {
            Some(integer) => Self::Integer(integer),
            None => Self::Float(number.as_f64()?),
        })
    }

    fn as_f64(self) -> f64 {
        match self {
            Self::Integer(integer) => integer as f64,
            Self::Float(float) => float,
        }
    }
}

fn float_value(float: f64) -> Result<Value, String> {
    if !float.is_finite() {
        return Err("arithmetic result is out of range".to_owned());
    }
    if float.fract() == 0.0 && float.abs() < 9.0e15 {
        return Ok(Value::from(float as i64));
    }
    hcl::Number::from_f64(float)
        .map(Value::Number)
        .ok_or_else(|| "arithmetic result is out of range".to_owned())
}

fn number(value: &Value, operator: &str) -> Result<Operand, String> {
    Operand::from_value(value).ok_or_else(|| {
        format!(
            "operator \"{operator}\" needs numbers, got {}",
            kind_of(value)
        )
    })
}

fn boolean(value: &Value, operator: &str) -> Result<bool, String> {
    value_to_bool(value).ok_or_else(|| {
        format!(
            "operator \"{operator}\" needs bools, got {}",
            kind_of(value)
        )
    })
}

pub(crate) fn unary(operator: UnaryOperator, value: &Value) -> Result<Value, String> {
    match operator {
        UnaryOperator::Not => Ok(Value::Bool(!boolean(value, "!")?)),
        UnaryOperator::Neg => match number(value, "-")? {
            Operand::Integer(integer) => match integer.checked_neg() {
                Some(negated) => Ok(Value::from(negated)),
                None => float_value(-(integer as f64)),
            },
            Operand::Float(float) => float_value(-float),
        },
    }
}

pub(crate) fn binary(operator: BinaryOperator, lhs: &Value, rhs: &Value) -> Result<Value, String> {
    let symbol = operator.as_str();
    let arithmetic = |checked: fn(i64, i64) -> Option<i64>, float: fn(f64, f64) -> f64| {
        let (left, right) = (number(lhs, symbol)?, number(rhs, symbol)?);
        if let (Operand::Integer(left), Operand::Integer(right)) = (left, right)
            && let Some(result) = checked(left, right)
        {
            return Ok(Value::from(result));
        }
        float_value(float(left.as_f64(), right.as_f64()))
    };
    let compare = |test: fn(f64, f64) -> bool| -> Result<Value, String> {
        let (left, right) = (number(lhs, symbol)?, number(rhs, symbol)?);
        Ok(Value::Bool(test(left.as_f64(), right.as_f64())))
    };
    match operator {
        BinaryOperator::Eq => Ok(Value::Bool(lhs == rhs)),
        BinaryOperator::NotEq => Ok(Value::Bool(lhs != rhs)),
        BinaryOperator::And => Ok(Value::Bool(boolean(lhs, symbol)? && boolean(rhs, symbol)?)),
        BinaryOperator::Or => Ok(Value::Bool(boolean(lhs, symbol)? || boolean(rhs, symbol)?)),
        BinaryOperator::Less => compare(|left, right| left < right),
        BinaryOperator::LessEq => compare(|left, right| left <= right),
        BinaryOperator::Greater => compare(|left, right| left > right),
        BinaryOperator::GreaterEq => compare(|left, right| left >= right),
        BinaryOperator::Plus => arithmetic(i64::checked_add, |left, right| left + right),
        BinaryOperator::Minus => arithmetic(i64::checked_sub, |left, right| left - right),
        BinaryOperator::Mul => arithmetic(i64::checked_mul, |left, right| left * right),
        BinaryOperator::Div | BinaryOperator::Mod => {
            if number(rhs, symbol)?.as_f64() == 0.0 {
                return Err("division by zero".to_owned());
            }
            if operator == BinaryOperator::Div {
                let (left, right) = (number(lhs, symbol)?, number(rhs, symbol)?);
                float_value(left.as_f64() / right.as_f64())
            } else {
                arithmetic(i64::checked_rem, |left, right| left % right)
            }
        }
    }
}
