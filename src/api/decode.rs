//! Strict decoding of request bodies: a body that does not decode into its request type is an
//! error naming the path of the bad field (`Job.TaskGroups[0].Count: invalid type: ...`), and a
//! JSON array never decodes as a struct.
//!
//! serde's derived `Deserialize` for a struct accepts a sequence as well as a map (fields by
//! position), and serde_json hands a struct's visitor whatever it finds. [`Strict`] wraps a
//! deserializer so that every `deserialize_struct` asks for a map instead, at every depth: a `[...]`
//! where a struct belongs fails with "invalid type: sequence, expected struct ...". The path comes
//! from `serde_path_to_error`.
//!
//! Invariant: no route acts on a body that failed to decode; callers get a
//! [`DecodeError`] and answer 400 with it.

use serde::de::{self, DeserializeSeed, Deserializer, Visitor};

/// A body that did not decode: the path of the bad field (empty at the top) and serde's reason.
#[derive(Debug, thiserror::Error)]
#[error("failed to decode request body: {}{message}", if matches!(path.as_str(), "" | "." | "?") { String::new() } else { format!("{path}: ") })]
pub struct DecodeError {
    pub path: String,
    pub message: String,
}

/// Decodes `body` as JSON into `T`, strictly (see the module doc). An empty body is an error.
pub fn decode_json<T: de::DeserializeOwned>(body: &[u8]) -> Result<T, DecodeError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(DecodeError {
            path: String::new(),
            message: "missing request body".to_owned(),
        });
    }
    let mut json = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(Strict(&mut json)).map_err(|error| {
        let path = error.path().to_string();
        DecodeError {
            path,
            message: error.into_inner().to_string(),
        }
    })?;
    json.end().map_err(|error| DecodeError {
        path: String::new(),
        message: error.to_string(),
    })?;
    Ok(value)
}

/// Middleware: refuses a request whose body is over `limit` bytes with a 400 naming the limit
/// (`server.max_request_body_size`), before any handler buffers or decodes it.
pub async fn limit_body(
    axum::extract::State(limit): axum::extract::State<usize>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;

    let too_large = || {
        crate::api::error::ApiError::BadRequest(format!(
            "request body is larger than the limit of {limit} bytes (server.max_request_body_size)"
        ))
        .into_response()
    };
    let (parts, body) = request.into_parts();
    let declared = parts
        .headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|declared| declared > limit as u64) {
        return too_large();
    }
    match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => {
            next.run(axum::extract::Request::from_parts(
                parts,
                axum::body::Body::from(bytes),
            ))
            .await
        }
        Err(_) => too_large(),
    }
}

/// A deserializer that decodes structs from maps only.
pub struct Strict<D>(pub D);

/// The same wrapper around a visitor, a seed, or an access: whatever it hands out is wrapped too.
struct Wrap<T>(T);

macro_rules! forward_deserialize {
    ($($method:ident),* $(,)?) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
                self.0.$method(Wrap(visitor))
            }
        )*
    };
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Strict<D> {
    type Error = D::Error;

    forward_deserialize!(
        deserialize_any,
        deserialize_bool,
        deserialize_i8,
        deserialize_i16,
        deserialize_i32,
        deserialize_i64,
        deserialize_i128,
        deserialize_u8,
        deserialize_u16,
        deserialize_u32,
        deserialize_u64,
        deserialize_u128,
        deserialize_f32,
        deserialize_f64,
        deserialize_char,
        deserialize_str,
        deserialize_string,
        deserialize_bytes,
        deserialize_byte_buf,
        deserialize_option,
        deserialize_unit,
        deserialize_seq,
        deserialize_map,
        deserialize_identifier,
        deserialize_ignored_any,
    );

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_unit_struct(name, Wrap(visitor))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_newtype_struct(name, Wrap(visitor))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_tuple(len, Wrap(visitor))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_tuple_struct(name, len, Wrap(visitor))
    }

    /// The point of the wrapper: a struct is read from a map, never from a sequence.
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_map(Wrap(visitor))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_enum(name, variants, Wrap(visitor))
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

macro_rules! forward_visit {
    ($($method:ident($ty:ty)),* $(,)?) => {
        $(
            fn $method<E: de::Error>(self, value: $ty) -> Result<Self::Value, E> {
                self.0.$method(value)
            }
        )*
    };
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Wrap<V> {
    type Value = V::Value;

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.expecting(formatter)
    }

    forward_visit!(
        visit_bool(bool),
        visit_i8(i8),
        visit_i16(i16),
        visit_i32(i32),
        visit_i64(i64),
        visit_i128(i128),
        visit_u8(u8),
        visit_u16(u16),
        visit_u32(u32),
        visit_u64(u64),
        visit_u128(u128),
        visit_f32(f32),
        visit_f64(f64),
        visit_char(char),
        visit_str(&str),
        visit_borrowed_str(&'de str),
        visit_string(String),
        visit_bytes(&[u8]),
        visit_borrowed_bytes(&'de [u8]),
        visit_byte_buf(Vec<u8>),
    );

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.0.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.0.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        self.0.visit_some(Strict(deserializer))
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        self.0.visit_newtype_struct(Strict(deserializer))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        self.0.visit_seq(Wrap(seq))
    }

    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.0.visit_map(Wrap(map))
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
        self.0.visit_enum(Wrap(data))
    }
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Wrap<S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        self.0.deserialize(Strict(deserializer))
    }
}

impl<'de, A: de::SeqAccess<'de>> de::SeqAccess<'de> for Wrap<A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Self::Error> {
        self.0.next_element_seed(Wrap(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, A: de::MapAccess<'de>> de::MapAccess<'de> for Wrap<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        self.0.next_key_seed(Wrap(seed))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.next_value_seed(Wrap(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, A: de::EnumAccess<'de>> de::EnumAccess<'de> for Wrap<A> {
    type Error = A::Error;
    type Variant = Wrap<A::Variant>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self::Variant), Self::Error> {
        self.0
            .variant_seed(Wrap(seed))
            .map(|(value, variant)| (value, Wrap(variant)))
    }
}

impl<'de, A: de::VariantAccess<'de>> de::VariantAccess<'de> for Wrap<A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), Self::Error> {
        self.0.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, Self::Error> {
        self.0.newtype_variant_seed(Wrap(seed))
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.tuple_variant(len, Wrap(visitor))
    }

    /// A struct variant is read from a map only, as a struct is.
    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.struct_variant(fields, Wrap(visitor))
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;
    use crate::api::types::jobs::JobRegisterRequest;

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(rename_all = "PascalCase", default)]
    struct Inner {
        name: String,
        count: u32,
    }

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(rename_all = "PascalCase", default)]
    struct Outer {
        inner: Option<Inner>,
        list: Vec<Inner>,
    }

    #[test]
    fn maps_decode_as_before() {
        let outer: Outer =
            decode_json(br#"{"Inner": {"Name": "a", "Count": 2}, "List": [{"Name": "b"}]}"#)
                .expect("decodes");
        assert_eq!(
            outer.inner,
            Some(Inner {
                name: "a".to_owned(),
                count: 2
            })
        );
        assert_eq!(outer.list[0].name, "b");
    }

    #[test]
    fn arrays_never_decode_as_structs() {
        let cases: &[(&[u8], &str)] = &[
            (
                br#"["a", 2]"#,
                "failed to decode request body: invalid type: sequence",
            ),
            (
                br#"{"Inner": ["a", 2]}"#,
                "failed to decode request body: Inner: invalid type: sequence",
            ),
            (
                br#"{"List": [{"Name": "x"}, ["a", 2]]}"#,
                "failed to decode request body: List[1]: invalid type: sequence",
            ),
        ];
        for (body, expected) in cases {
            let error = decode_json::<Outer>(body).expect_err("an array is not a struct");
            assert!(
                error.to_string().starts_with(expected),
                "{}: {error}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn bad_bodies_name_the_field() {
        let cases: &[(&[u8], &str)] = &[
            (
                b"this is not json",
                "failed to decode request body: expected ident at line 1",
            ),
            (
                b"{{{{",
                "failed to decode request body: key must be a string",
            ),
            (b"", "failed to decode request body: missing request body"),
            (
                br#"{"Name": "a"} trailing"#,
                "failed to decode request body: trailing characters",
            ),
            (
                br#"{"Inner": {"Count": -1}}"#,
                "failed to decode request body: Inner.Count: invalid value: integer `-1`",
            ),
        ];
        for (body, expected) in cases {
            let error = decode_json::<Outer>(body).expect_err("does not decode");
            assert!(
                error.to_string().starts_with(expected),
                "{}: {error}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn job_bodies_report_the_path() {
        let error = decode_json::<JobRegisterRequest>(
            br#"{"Job": {"ID": "x", "TaskGroups": [{"Name": "g", "Count": "many"}]}}"#,
        )
        .expect_err("a string is not a count");
        assert!(
            error.to_string().starts_with(
                "failed to decode request body: Job.TaskGroups[0].Count: invalid type"
            ),
            "{error}"
        );
        let error = decode_json::<JobRegisterRequest>(br#"{"Job": [1, 2, 3]}"#)
            .expect_err("an array is not a job");
        assert!(
            error.to_string().contains("Job: invalid type: sequence"),
            "{error}"
        );
    }
}
