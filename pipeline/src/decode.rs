//! Decoding Debezium change events (JSON converter, schemas disabled) from the raw CDC topics.
//!
//! Owns the event identity of docs/architecture.md, Semantics: database, source transaction (PostgreSQL `txId`, MariaDB
//! GTID), table, primary key and the row's `write_id` (the value the harness's load generator
//! writes with every change, so that each event names the operation that made it) — present for
//! deletes too, from the before image. It must not know about join state.

use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// The three source tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Table {
    Customers,
    Flights,
    Vehicles,
}

impl Table {
    /// The table a raw CDC topic carries.
    pub fn of_topic(topic: &str) -> Option<Table> {
        [Table::Customers, Table::Flights, Table::Vehicles].into_iter().find(|t| t.topic() == topic)
    }

    /// The raw CDC topic that carries the table.
    pub fn topic(self) -> &'static str {
        match self {
            Table::Customers => "crm.public.customers",
            Table::Flights => "crm.public.flights",
            Table::Vehicles => "fleet.fleet.vehicles",
        }
    }

    /// The name used in output records and the warehouse (`customers`, `flights`, `vehicles`).
    pub fn as_str(self) -> &'static str {
        match self {
            Table::Customers => "customers",
            Table::Flights => "flights",
            Table::Vehicles => "vehicles",
        }
    }

    /// The source database the table lives in.
    pub fn database(self) -> &'static str {
        match self {
            Table::Customers | Table::Flights => "crm",
            Table::Vehicles => "fleet",
        }
    }
}

/// Identity of one committed row change, stable across every hop.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct EventId {
    /// `crm` or `fleet`: one of [`Table::database`]'s names, kept without a copy.
    pub database: std::borrow::Cow<'static, str>,
    /// PostgreSQL transaction id or MariaDB GTID (`domain-server-sequence`); `snapshot` for
    /// rows read by the initial snapshot.
    pub tx: String,
    pub table: Table,
    pub pk: i64,
    /// The row's `write_id` column (after the change; before it for a delete): which operation
    /// wrote it. None where the row has none (written by someone other than the harness).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_id: Option<i64>,
}

/// What happened to the row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// Insert, update or snapshot read: the row now is `after`.
    Upsert,
    /// The row is gone.
    Delete,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Upsert => "upsert",
            Op::Delete => "delete",
        }
    }
}

/// A source row as Debezium sent it: the text of its JSON object (every column, untouched), with
/// the columns the join and the checker key on read out of it. The join builds documents by
/// splicing these texts, so no row is parsed into a map or rendered again.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Row {
    /// The row's JSON object, as received; shared, so that the join state keeps it without a
    /// copy.
    #[serde(with = "shared_text")]
    pub json: std::sync::Arc<str>,
    /// Its `id` column.
    pub id: i64,
    /// Its `customer_id` column, where it has an integer one (flights and vehicles must).
    pub customer_id: Option<i64>,
    /// Its `write_id` column (None for null or absent).
    pub write_id: Option<i64>,
}

/// A row's shared text, (de)serialized as a string.
mod shared_text {
    pub fn serialize<S: serde::Serializer>(text: &std::sync::Arc<str>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(text)
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<std::sync::Arc<str>, D::Error> {
        <String as serde::Deserialize>::deserialize(d).map(Into::into)
    }
}

/// The columns of a row the pipeline reads, borrowed from its text.
#[derive(Default, serde::Deserialize)]
struct Keys<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    customer_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    write_id: Option<&'a RawValue>,
}

impl Keys<'_> {
    /// The row whose text is `json` and whose key columns these are.
    fn row(&self, json: &str) -> Result<Row, DecodeError> {
        let id = self.id.and_then(integer).ok_or_else(|| err("row has no integer \"id\""))?;
        let write_id = match self.write_id {
            None => None,
            Some(v) => Some(integer(v).ok_or_else(|| err(format!("\"write_id\" is not an integer: {v}")))?),
        };
        Ok(Row { json: json.into(), id, customer_id: self.customer_id.and_then(integer), write_id })
    }
}

/// An integer JSON value, as `Value::as_i64` takes one (`5`, not `5.0` nor `"5"`).
fn integer(raw: &RawValue) -> Option<i64> {
    raw.get().parse().ok()
}

impl Row {
    /// A row from the text of a JSON object.
    pub fn parse(json: &str) -> Result<Row, DecodeError> {
        if !json.starts_with('{') {
            return Err(err(format!("not an object: {json}")));
        }
        let keys: Keys = serde_json::from_str(json).map_err(|e| err(format!("not an object: {e}")))?;
        keys.row(json)
    }

    /// A row from its columns.
    pub fn from_columns(columns: &Map<String, Value>) -> Result<Row, DecodeError> {
        Row::parse(&Value::Object(columns.clone()).to_string())
    }

    /// Its columns, parsed.
    pub fn columns(&self) -> Map<String, Value> {
        serde_json::from_str(&self.json).expect("a row's text is a JSON object")
    }
}

/// One decoded change event.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Change {
    pub id: EventId,
    pub op: Op,
    /// The row after the change (`Upsert`) or before it (`Delete`).
    pub row: Row,
    /// Source commit time, microseconds since the epoch.
    pub source_ts_us: i64,
    /// Position in the source log (PostgreSQL LSN; MariaDB binlog file, position and row), for
    /// per-key ordering checks.
    pub position: String,
}

/// What a raw record decodes to.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    Change(Change),
    /// A tombstone (null value) after a delete: compaction bookkeeping, not an event.
    Tombstone,
}

/// Why a record could not be decoded (it goes to the dead-letter topic with this reason).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct DecodeError {
    pub reason: String,
}

fn err(reason: impl Into<String>) -> DecodeError {
    DecodeError { reason: reason.into() }
}

/// A Debezium envelope, its parts borrowed from the record's text, read in one pass: the
/// `after` image's key columns and the `source` block's fields are read while serde_json checks
/// them, not by parsing their texts again. A field that is absent reads as null.
struct Envelope<'a> {
    before: Option<&'a RawValue>,
    after: Shape<Image<'a>>,
    op: Option<&'a RawValue>,
    source: Shape<Source<'a>>,
}

/// The envelope's fields, by name (a key with escapes is compared unescaped).
#[derive(serde::Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum Field {
    Before,
    After,
    Op,
    Source,
    #[serde(other)]
    Other,
}

/// Reads an [`Envelope`] out of `.0`, the record's text, which serde_json is reading.
struct EnvelopeReader<'a>(&'a str);

impl<'de> serde::de::Visitor<'de> for EnvelopeReader<'de> {
    type Value = Envelope<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a Debezium change event")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Envelope<'de>, A::Error> {
        let mut env = Envelope { before: None, after: Shape::Null, op: None, source: Shape::Null };
        // Any of the four may be null: seen flags, not their values, find repeats.
        let mut seen = [false; 4];
        while let Some(field) = map.next_key::<Field>()? {
            let (n, name) = match field {
                Field::Before => (0, "before"),
                Field::After => (1, "after"),
                Field::Op => (2, "op"),
                Field::Source => (3, "source"),
                Field::Other => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                    continue;
                }
            };
            if std::mem::replace(&mut seen[n], true) {
                return Err(serde::de::Error::duplicate_field(name));
            }
            match field {
                Field::Before => env.before = map.next_value()?,
                Field::After => env.after = map.next_value_seed(ShapeReader(ImageReader(self.0)))?,
                Field::Op => env.op = map.next_value()?,
                _ => env.source = map.next_value_seed(ShapeReader(std::marker::PhantomData))?,
            }
        }
        Ok(env)
    }
}

/// A JSON value that must be an object: what it holds, or which other kind of value it is.
enum Shape<T> {
    Object(T),
    Null,
    NotObject,
}

/// Reads a [`Shape`], the object's members with the seed `.0`, any other value passed over.
struct ShapeReader<S>(S);

impl<'de, S: serde::de::DeserializeSeed<'de>> serde::de::DeserializeSeed<'de> for ShapeReader<S> {
    type Value = Shape<S::Value>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, S: serde::de::DeserializeSeed<'de>> serde::de::Visitor<'de> for ShapeReader<S> {
    type Value = Shape<S::Value>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.0.deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(Shape::Object)
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Shape::Null)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Shape::NotObject)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Shape::NotObject)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Shape::NotObject)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Shape::NotObject)
    }

    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Shape::NotObject)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(Shape::NotObject)
    }
}

/// A row image (`after`) as read in the envelope's pass: the span of its object in the record's
/// text and its key columns.
struct Image<'a> {
    text: &'a str,
    keys: Keys<'a>,
}

/// Reads an [`Image`] out of an object's members, `.0` being the record's text.
struct ImageReader<'a>(&'a str);

impl<'de> serde::de::DeserializeSeed<'de> for ImageReader<'de> {
    type Value = Image<'de>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

/// A row's columns, by name.
#[derive(serde::Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum Column {
    Id,
    CustomerId,
    WriteId,
    #[serde(other)]
    Other,
}

impl<'de> serde::de::Visitor<'de> for ImageReader<'de> {
    type Value = Image<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a row image")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Image<'de>, A::Error> {
        let mut keys = Keys::default();
        let mut seen = [false; 3];
        // Every value is taken as raw text, so that the first and the last one locate the object.
        let (mut first, mut last): (Option<&'de str>, Option<&'de str>) = (None, None);
        while let Some(column) = map.next_key::<Column>()? {
            let value: &'de RawValue = map.next_value()?;
            first.get_or_insert(value.get());
            last = Some(value.get());
            let (slot, n, name) = match column {
                Column::Id => (&mut keys.id, 0, "id"),
                Column::CustomerId => (&mut keys.customer_id, 1, "customer_id"),
                Column::WriteId => (&mut keys.write_id, 2, "write_id"),
                Column::Other => continue,
            };
            if std::mem::replace(&mut seen[n], true) {
                return Err(serde::de::Error::duplicate_field(name));
            }
            // As an `Option` field reads it: null is none.
            *slot = (value.get() != "null").then_some(value);
        }
        let text = match (first, last) {
            (Some(first), Some(last)) => object_around(self.0, first, last).ok_or_else(|| serde::de::Error::custom("a row image's text was not found in the record"))?,
            // `{}`: nothing to locate, and nothing to key on either.
            _ => "{}",
        };
        Ok(Image { text, keys })
    }
}

/// The text of the JSON object of `record` whose first member's value is `first` and whose last
/// member's value is `last` (both slices of `record`, which serde_json has checked): back from
/// `first` over the separator and the member's name to the `{`, on from `last` to the `}`.
fn object_around<'a>(record: &'a str, first: &str, last: &str) -> Option<&'a str> {
    let bytes = record.as_bytes();
    let offset = |s: &str| (s.as_ptr() as usize).checked_sub(bytes.as_ptr() as usize).filter(|&o| o + s.len() <= bytes.len());
    let (first, end) = (offset(first)?, offset(last)? + last.len());
    let blank = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    let back_over_blanks = |mut i: usize| {
        while i > 0 && blank(bytes[i - 1]) {
            i -= 1;
        }
        i
    };
    // `i` is just past the byte expected before it.
    let expect_before = |i: usize, b: u8| (i > 0 && bytes[i - 1] == b).then(|| i - 1);
    let mut i = expect_before(back_over_blanks(first), b':')?;
    i = expect_before(back_over_blanks(i), b'"')?;
    // The name's opening quote: the first quote back that no odd run of backslashes escapes.
    loop {
        i = i.checked_sub(1)?;
        if bytes[i] == b'"' && bytes[..i].iter().rev().take_while(|&&b| b == b'\\').count() % 2 == 0 {
            break;
        }
    }
    let start = expect_before(back_over_blanks(i), b'{')?;
    let close = end + bytes[end..].iter().position(|&b| !blank(b))?;
    (bytes[close] == b'}').then(|| &record[start..=close])
}

/// The fields of Debezium's `source` block the pipeline reads (PostgreSQL's or MariaDB's).
#[derive(serde::Deserialize)]
#[allow(non_snake_case)]
struct Source<'a> {
    #[serde(borrow, default)]
    txId: Option<&'a RawValue>,
    #[serde(borrow, default)]
    lsn: Option<&'a RawValue>,
    #[serde(borrow, default)]
    gtid: Option<&'a RawValue>,
    #[serde(borrow, default)]
    file: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pos: Option<&'a RawValue>,
    #[serde(borrow, default)]
    row: Option<&'a RawValue>,
    #[serde(borrow, default)]
    ts_us: Option<&'a RawValue>,
    #[serde(borrow, default)]
    ts_ms: Option<&'a RawValue>,
}

/// A JSON string value (None for any other kind of value).
fn string(raw: &RawValue) -> Option<std::borrow::Cow<'_, str>> {
    let inner = raw.get().strip_prefix('"')?.strip_suffix('"')?;
    // serde_json has checked the string: without a backslash, its text is its value.
    if !inner.contains('\\') {
        return Some(inner.into());
    }
    serde_json::from_str(raw.get()).ok()
}

/// Decodes one record of a raw CDC topic.
pub fn decode(topic: &str, value: Option<&[u8]>) -> Result<Decoded, DecodeError> {
    let table = Table::of_topic(topic).ok_or_else(|| err(format!("topic {topic:?} is not a raw CDC topic")))?;
    let Some(bytes) = value else { return Ok(Decoded::Tombstone) };
    let text = std::str::from_utf8(bytes).map_err(|e| err(format!("not JSON: {e}")))?;
    if !text.trim_start().starts_with('{') {
        return Err(match serde_json::from_str::<serde::de::IgnoredAny>(text) {
            Ok(_) => err("value is not a JSON object"),
            Err(e) => err(format!("not JSON: {e}")),
        });
    }
    let not_json = |e: serde_json::Error| err(format!("not JSON: {e}"));
    let mut reader = serde_json::Deserializer::from_str(text);
    let env = serde::Deserializer::deserialize_map(&mut reader, EnvelopeReader(text)).map_err(not_json)?;
    reader.end().map_err(not_json)?;
    let op = env.op.and_then(string).ok_or_else(|| err("no \"op\" field"))?;
    let snapshot = &*op == "r";
    let (op, row) = match &*op {
        "c" | "u" | "r" => {
            let row = match env.after {
                Shape::Object(Image { text, keys }) => keys.row(text)?,
                Shape::NotObject => return Err(err("\"after\" is not an object")),
                Shape::Null => return Err(err(format!("op {op:?} without \"after\""))),
            };
            (Op::Upsert, row)
        }
        "d" => {
            // Deletes are rare: the before image is parsed on its own.
            let row = match env.before {
                Some(raw) if raw.get().starts_with('{') => Row::parse(raw.get())?,
                Some(other) => return Err(err(format!("\"before\" is not an object: {other}"))),
                None => return Err(err("delete without \"before\" (REPLICA IDENTITY FULL?)")),
            };
            (Op::Delete, row)
        }
        other => return Err(err(format!("unsupported op {other:?}"))),
    };
    if table != Table::Customers && row.customer_id.is_none() {
        return Err(err("row has no integer \"customer_id\""));
    }
    let Shape::Object(source) = env.source else { return Err(err("no \"source\" block")) };
    let (tx, position) = match table.database() {
        "crm" => {
            let tx = source.txId.and_then(integer).map(|t| itoa::Buffer::new().format(t).to_string());
            let lsn = source.lsn.and_then(integer).ok_or_else(|| err("source has no \"lsn\""))?;
            let mut position = String::with_capacity(24);
            position.push_str("lsn:");
            position.push_str(itoa::Buffer::new().format(lsn));
            (tx, position)
        }
        _ => {
            let tx = source.gtid.and_then(string).map(String::from);
            let file = source.file.and_then(string).ok_or_else(|| err("source has no binlog \"file\""))?;
            let pos = source.pos.and_then(integer).ok_or_else(|| err("source has no binlog \"pos\""))?;
            let row_no = source.row.and_then(integer).unwrap_or(0);
            let mut position = file.into_owned();
            for n in [pos, row_no] {
                position.push(':');
                position.push_str(itoa::Buffer::new().format(n));
            }
            (tx, position)
        }
    };
    let tx = match (tx, snapshot) {
        (Some(t), _) => t,
        (None, true) => "snapshot".to_string(),
        (None, false) => return Err(err("source has no transaction id (txId / gtid)")),
    };
    let ts_us = source
        .ts_us
        .and_then(integer)
        .or_else(|| source.ts_ms.and_then(integer).map(|ms| ms * 1000))
        .ok_or_else(|| err("source has no commit time (ts_us / ts_ms)"))?;
    Ok(Decoded::Change(Change {
        id: EventId { database: table.database().into(), tx, table, pk: row.id, write_id: row.write_id },
        op,
        row,
        source_ts_us: ts_us,
        position,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pg(op: &str, before: Value, after: Value) -> Vec<u8> {
        json!({"before": before, "after": after, "op": op,
               "source": {"txId": 771, "lsn": 2345, "ts_us": 1_700_000_000_000_001i64, "db": "crm"}})
        .to_string()
        .into_bytes()
    }

    #[test]
    fn decodes_inserts_updates_and_deletes_with_identity() {
        let ins = decode("crm.public.customers", Some(&pg("c", Value::Null, json!({"id": 1, "name": "Ada"})))).unwrap();
        let Decoded::Change(c) = ins else { panic!() };
        assert_eq!(c.id, EventId { database: "crm".into(), tx: "771".into(), table: Table::Customers, pk: 1, write_id: None });
        assert_eq!(c.op, Op::Upsert);
        assert_eq!(c.source_ts_us, 1_700_000_000_000_001);
        assert_eq!(c.position, "lsn:2345");

        let del = decode("crm.public.flights", Some(&pg("d", json!({"id": 9, "customer_id": 1, "write_id": 77}), Value::Null))).unwrap();
        let Decoded::Change(d) = del else { panic!() };
        assert_eq!((d.op, d.id.pk, d.row.customer_id), (Op::Delete, 9, Some(1)));
        assert_eq!(d.row.columns()["customer_id"], 1);
        assert_eq!(d.id.write_id, Some(77), "a delete's write id comes from its before image");

        let v = json!({"before": null, "after": {"id": 5, "customer_id": 2}, "op": "c",
                       "source": {"gtid": "0-1-42", "file": "binlog.000001", "pos": 900, "row": 0, "ts_ms": 1000}});
        let Decoded::Change(m) = decode("fleet.fleet.vehicles", Some(v.to_string().as_bytes())).unwrap() else { panic!() };
        assert_eq!((&*m.id.database, m.id.tx.as_str(), m.source_ts_us), ("fleet", "0-1-42", 1_000_000));
        assert_eq!(m.position, "binlog.000001:900:0");
    }

    #[test]
    fn names_match_the_serialized_form() {
        for t in [Table::Customers, Table::Flights, Table::Vehicles] {
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
        for o in [Op::Upsert, Op::Delete] {
            assert_eq!(serde_json::to_value(o).unwrap(), o.as_str());
        }
    }

    #[test]
    fn rows_keep_their_text_and_read_escapes_and_whitespace() {
        let text = "{ \"before\" : null ,\n \"after\" : { \"id\" : 7 , \"customer_id\": 3, \"model\": \"T\\u00e9 \\\"x\\\"\", \"write_id\": null } , \"op\" : \"\\u0063\",
            \"source\": {\"gtid\": \"0-1-\\u0039\", \"file\": \"b.1\", \"pos\": 4, \"ts_us\": 5} }";
        let Decoded::Change(c) = decode("fleet.fleet.vehicles", Some(text.as_bytes())).unwrap() else { panic!() };
        assert_eq!((c.op, c.id.tx.as_str(), c.position.as_str(), c.source_ts_us), (Op::Upsert, "0-1-9", "b.1:4:0", 5));
        assert_eq!((c.row.id, c.row.customer_id, c.row.write_id), (7, Some(3), None));
        assert_eq!(c.row.columns()["model"], "Té \"x\"");
        assert_eq!(&*c.row.json, "{ \"id\" : 7 , \"customer_id\": 3, \"model\": \"T\\u00e9 \\\"x\\\"\", \"write_id\": null }", "the text as sent");
        let row = Row::from_columns(&c.row.columns()).unwrap();
        assert_eq!((row.id, row.customer_id), (7, Some(3)));
        for (id, ok) in [("5", true), ("5.0", false), ("\"5\"", false), ("1e3", false), ("18446744073709551615", false)] {
            assert_eq!(Row::parse(&format!("{{\"id\": {id}}}")).is_ok(), ok, "id {id}");
        }
    }

    #[test]
    fn an_image_is_found_from_its_first_and_last_values_whatever_its_names_hold() {
        for row in [r#"{"a\\":1,"id":2}"#, r#"{ "\"" :1 , "id":2 }"#, r#"{"\\\"\\":{"x":[1]},"id":2}"#, "{\n\t\"id\"\r:\n2\n}"] {
            let text = format!(r#"{{"after":{row},"op":"c","source":{{"txId":1,"lsn":1,"ts_us":1}}}}"#);
            let Decoded::Change(c) = decode("crm.public.customers", Some(text.as_bytes())).unwrap() else { panic!() };
            assert_eq!((&*c.row.json, c.row.id), (row, 2));
        }
        let text = "{\"after\": {}, \"before\": [1], \"op\": \"c\", \"source\": {\"txId\":1,\"lsn\":1,\"ts_us\":1}}";
        assert!(decode("crm.public.customers", Some(text.as_bytes())).unwrap_err().reason.contains("no integer \"id\""));
        for (after, want) in [("[1]", "\"after\" is not an object"), ("\"x\"", "\"after\" is not an object"), ("null", "without \"after\"")] {
            let text = format!(r#"{{"after":{after},"op":"u","source":{{"txId":1,"lsn":1,"ts_us":1}}}}"#);
            assert!(decode("crm.public.customers", Some(text.as_bytes())).unwrap_err().reason.contains(want), "{after}");
        }
        let text = r#"{"after":{"id":1},"op":"c","source":[1]}"#;
        assert!(decode("crm.public.customers", Some(text.as_bytes())).unwrap_err().reason.contains("no \"source\" block"));
    }

    #[test]
    fn tombstones_are_not_events() {
        assert_eq!(decode("crm.public.customers", None).unwrap(), Decoded::Tombstone);
    }

    #[test]
    fn malformed_records_say_why() {
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("other.topic", b"{}".to_vec(), "not a raw CDC topic"),
            ("crm.public.customers", b"{nope".to_vec(), "not JSON"),
            ("crm.public.customers", b"{\"op\": \"c\xff\"}".to_vec(), "invalid utf-8 sequence of 1 bytes from index 9"),
            ("crm.public.customers", b"[1]".to_vec(), "not a JSON object"),
            ("crm.public.customers", pg("x", Value::Null, json!({"id": 1})), "unsupported op"),
            ("crm.public.customers", pg("d", Value::Null, Value::Null), "delete without \"before\""),
            ("crm.public.customers", pg("c", Value::Null, json!({"name": "no id"})), "no integer \"id\""),
            ("crm.public.flights", pg("c", Value::Null, json!({"id": 1})), "customer_id"),
            ("crm.public.customers", json!({"op": "c", "after": {"id": 1}}).to_string().into_bytes(), "no \"source\""),
            ("crm.public.customers", pg("c", Value::Null, json!({"id": 1, "write_id": "x"})), "\"write_id\" is not an integer"),
        ];
        for (topic, bytes, want) in cases {
            let e = decode(topic, Some(&bytes)).unwrap_err();
            assert!(e.reason.contains(want), "{topic}: {} should mention {want}", e.reason);
        }
    }

    #[test]
    fn decodes_records_as_debezium_writes_them() {
        // Debezium 3 with the JSON converter, schemas off: every field of the envelope and of
        // each connector's source block, most of which the decoder passes over.
        let pg = r#"{"before":{"id":7,"name":"a","write_id":41},"after":{"id":7,"name":"b\u00e9","write_id":42},"source":{"version":"3.0.7.Final","connector":"postgresql","name":"crm","ts_ms":1733590000123,"snapshot":"false","db":"crm","sequence":"[\"24023928\",\"24023976\"]","ts_us":1733590000123456,"ts_ns":1733590000123456000,"schema":"public","table":"customers","txId":771,"lsn":24023976,"xmin":null},"transaction":null,"op":"u","ts_ms":1733590000200,"ts_us":1733590000200111,"ts_ns":1733590000200111000}"#;
        let Decoded::Change(c) = decode("crm.public.customers", Some(pg.as_bytes())).unwrap() else { panic!() };
        assert_eq!(c.id, EventId { database: "crm".into(), tx: "771".into(), table: Table::Customers, pk: 7, write_id: Some(42) });
        assert_eq!((c.op, c.source_ts_us, c.position.as_str()), (Op::Upsert, 1733590000123456, "lsn:24023976"));
        assert_eq!(&*c.row.json, r#"{"id":7,"name":"b\u00e9","write_id":42}"#);

        let maria = r#"{"before":{"id":5,"customer_id":2,"model":"T","write_id":9},"after":null,"source":{"version":"3.0.7.Final","connector":"mariadb","name":"fleet","ts_ms":1733590001000,"snapshot":"false","db":"fleet","sequence":null,"ts_us":1733590001000000,"ts_ns":1733590001000000000,"table":"vehicles","server_id":1,"gtid":"0-1-42","file":"mariadb-bin.000003","pos":1234,"row":1,"thread":12,"query":null},"transaction":null,"op":"d","ts_ms":1733590001050,"ts_us":1733590001050000,"ts_ns":1733590001050000000}"#;
        let Decoded::Change(d) = decode("fleet.fleet.vehicles", Some(maria.as_bytes())).unwrap() else { panic!() };
        assert_eq!(d.id, EventId { database: "fleet".into(), tx: "0-1-42".into(), table: Table::Vehicles, pk: 5, write_id: Some(9) });
        assert_eq!((d.op, d.row.customer_id, d.position.as_str()), (Op::Delete, Some(2), "mariadb-bin.000003:1234:1"));

        let escaped_keys = r#"{"\u006fp": "c", "after": {"\u0069d": 3, "customer_\u0069d": 4}, "source": {"txId": 1, "lsn": 1, "ts_us": 1}}"#;
        let Decoded::Change(e) = decode("crm.public.flights", Some(escaped_keys.as_bytes())).unwrap() else { panic!() };
        assert_eq!((e.id.pk, e.row.customer_id), (3, Some(4)), "keys are compared unescaped");
    }

    #[test]
    fn duplicate_fields_and_trailing_text_are_refused() {
        let cases: Vec<(&str, &str)> = vec![
            (r#"{"op": "c", "op": "d", "after": {"id": 1}, "source": {"txId": 1, "lsn": 1, "ts_us": 1}}"#, "duplicate field `op`"),
            (r#"{"op": "c", "after": {"id": 1, "id": 2}, "source": {"txId": 1, "lsn": 1, "ts_us": 1}}"#, "duplicate field `id`"),
            (r#"{"op": "c", "after": {"id": 1}, "source": {"txId": 1, "lsn": 1, "lsn": 2, "ts_us": 1}}"#, "duplicate field `lsn`"),
            (r#"{"op": "c", "after": {"id": 1}, "source": {"txId": 1, "lsn": 1, "ts_us": 1}} x"#, "not JSON"),
            (r#"{"op": "c", "after": {"id": 1, "name": "a\u00"}, "source": {"txId": 1, "lsn": 1, "ts_us": 1}}"#, "not JSON"),
            ("{\"op\": \"c\", \"after\": {\"id\": 1, \"name\": \"tab\there\"}, \"source\": {\"txId\": 1, \"lsn\": 1, \"ts_us\": 1}}", "not JSON"),
        ];
        for (text, want) in cases {
            let e = decode("crm.public.customers", Some(text.as_bytes())).unwrap_err();
            assert!(e.reason.contains(want), "{text}: {} should mention {want}", e.reason);
        }
        assert!(Row::parse(r#"{"id": 1} {"#).unwrap_err().reason.contains("not an object"));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn column() -> impl Strategy<Value = Value> {
            prop_oneof![
                any::<i64>().prop_map(Value::from),
                any::<f64>().prop_filter("JSON has no NaN or infinity", |f| f.is_finite()).prop_map(Value::from),
                ".{0,12}".prop_map(Value::from),
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                prop::collection::vec(any::<i32>(), 0..3).prop_map(|v| json!(v)),
                prop::collection::btree_map("[a-z\"]{1,3}", any::<i16>(), 0..3).prop_map(|m| json!(m)),
            ]
        }

        proptest! {
            /// On any envelope serde_json writes (compact or pretty, escaped keys and values,
            /// columns of every JSON kind), the decoder reads what a plain `serde_json::Value`
            /// reading of the same text gives: the row's text, its key columns, and the same
            /// refusal of a row that lacks one.
            #[test]
            fn decode_reads_what_serde_json_reads(
                id in column(),
                customer_id in prop::option::of(column()),
                write_id in prop::option::of(column()),
                others in prop::collection::btree_map("[a-z_\"\\\\\u{e9}\u{1F600}]{1,8}", column(), 0..4),
                op in prop_oneof![Just("c"), Just("u"), Just("r"), Just("d")],
                table in prop_oneof![Just(Table::Customers), Just(Table::Flights), Just(Table::Vehicles)],
                pretty in any::<bool>(),
            ) {
                let mut row: Map<String, Value> = others.into_iter().collect();
                row.insert("id".into(), id.clone());
                if let Some(c) = &customer_id {
                    row.insert("customer_id".into(), c.clone());
                }
                if let Some(w) = &write_id {
                    row.insert("write_id".into(), w.clone());
                }
                let row = Value::Object(row);
                let (before, after) = if op == "d" { (row.clone(), Value::Null) } else { (row.clone(), row.clone()) };
                let source = match table {
                    Table::Vehicles => json!({"gtid": "0-1-9", "file": "binlog.000001", "pos": 4, "row": 0, "ts_ms": 5}),
                    _ => json!({"version": "3.3", "txId": 9, "lsn": 4, "ts_us": 5, "sequence": "[\"1\",\"2\"]"}),
                };
                let envelope = json!({"before": before, "after": after, "op": op, "source": source, "ts_ms": 7});
                let text = if pretty { serde_json::to_string_pretty(&envelope) } else { serde_json::to_string(&envelope) }.unwrap();
                let topic = match table {
                    Table::Customers => "crm.public.customers",
                    Table::Flights => "crm.public.flights",
                    Table::Vehicles => "fleet.fleet.vehicles",
                };
                let got = decode(topic, Some(text.as_bytes()));
                let customer_id = customer_id.as_ref().and_then(Value::as_i64);
                let refusal = match (id.as_i64(), write_id.as_ref().filter(|w| !w.is_null()).map(Value::as_i64)) {
                    (None, _) => Some("no integer \"id\""),
                    (_, Some(None)) => Some("\"write_id\" is not an integer"),
                    _ if table != Table::Customers && customer_id.is_none() => Some("no integer \"customer_id\""),
                    _ => None,
                };
                match (refusal, got) {
                    (Some(want), Err(e)) => prop_assert!(e.reason.contains(want), "{} should mention {}", e.reason, want),
                    (None, Ok(Decoded::Change(c))) => {
                        prop_assert_eq!(c.row.id, id.as_i64().unwrap());
                        prop_assert_eq!(c.row.customer_id, customer_id);
                        prop_assert_eq!(c.row.write_id, write_id.as_ref().and_then(Value::as_i64));
                        // Parsed alike (serde_json's float parsing is not exact both ways).
                        let image = serde_json::from_str::<Value>(&text).unwrap()[if op == "d" { "before" } else { "after" }].take();
                        prop_assert_eq!(serde_json::from_str::<Value>(&c.row.json).unwrap(), image);
                        prop_assert!(text.contains(&*c.row.json), "the row's text is the record's");
                    }
                    (want, got) => prop_assert!(false, "expected refusal {:?}, got {:?}", want, got),
                }
            }
        }
    }
}
