//! Test helpers shared by unit tests: the drift checks between published JSON Schemas in
//! `docs/` and the Rust types they describe.

use serde::de::value::Error as ValueError;
use serde::de::{Error as _, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::{json, Value};

/// A deserializer that reports the field names a derived `Deserialize` accepts.
struct FieldNames;

impl<'de> Deserializer<'de> for FieldNames {
    type Error = ValueError;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, ValueError> {
        Err(ValueError::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, ValueError> {
        Err(ValueError::custom(fields.join(",")))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
        byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
        identifier ignored_any
    }
}

pub fn fields_of<'de, T: Deserialize<'de>>() -> Vec<String> {
    let Err(error) = T::deserialize(FieldNames) else {
        panic!("not a struct")
    };
    let mut names: Vec<String> = error.to_string().split(',').map(String::from).collect();
    names.sort();
    names
}

pub fn keys(object: &Value) -> Vec<String> {
    assert_eq!(object["additionalProperties"], json!(false), "{object}");
    let mut names: Vec<String> = object["properties"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    names.sort();
    names
}
