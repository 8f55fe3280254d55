//! Carrier adapters: maps, HTTP headers, Kafka-style header lists, AMQP (lapin) and NATS
//! headers.

use std::collections::HashMap;

use super::{Extractor, Injector};

/// A `HashMap` carrier stores keys lowercase and looks them up lowercase.
impl Injector for HashMap<String, String> {
    fn set(&mut self, key: &str, value: &str) {
        self.insert(key.to_ascii_lowercase(), value.to_owned());
    }
}

impl Extractor for HashMap<String, String> {
    fn get(&self, key: &str) -> Option<&str> {
        match HashMap::get(self, key) {
            Some(v) => Some(v.as_str()),
            None => HashMap::get(self, &key.to_ascii_lowercase()).map(String::as_str),
        }
    }

    fn keys(&self) -> Vec<&str> {
        HashMap::keys(self).map(String::as_str).collect()
    }
}

/// HTTP headers (`http::HeaderMap`, as used by axum, hyper, reqwest and tonic).
impl Injector for http::HeaderMap {
    fn set(&mut self, key: &str, value: &str) {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(value),
        ) {
            self.insert(name, value);
        }
    }
}

impl Extractor for http::HeaderMap {
    fn get(&self, key: &str) -> Option<&str> {
        http::HeaderMap::get(self, key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        http::HeaderMap::keys(self).map(http::HeaderName::as_str).collect()
    }
}

/// Kafka-style record headers: an ordered list of `(key, bytes)` pairs, as in rdkafka's
/// `OwnedHeaders`, `rskafka` and most Kafka clients. Keys compare case-insensitively;
/// injection replaces an existing header with the same key.
#[derive(Debug)]
pub struct KafkaHeaders<'a>(pub &'a mut Vec<(String, Vec<u8>)>);

impl Injector for KafkaHeaders<'_> {
    fn set(&mut self, key: &str, value: &str) {
        self.0.inject_kafka(key, value);
    }
}

impl Extractor for KafkaHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.as_slice().get_kafka(key)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| k.as_str()).collect()
    }
}

trait KafkaList {
    fn inject_kafka(&mut self, key: &str, value: &str);
}
trait KafkaRead {
    fn get_kafka(&self, key: &str) -> Option<&str>;
}

impl KafkaList for Vec<(String, Vec<u8>)> {
    fn inject_kafka(&mut self, key: &str, value: &str) {
        match self.iter_mut().find(|(k, _)| k.eq_ignore_ascii_case(key)) {
            Some((_, v)) => {
                v.clear();
                v.extend_from_slice(value.as_bytes());
            }
            None => self.push((key.to_owned(), value.as_bytes().to_vec())),
        }
    }
}

impl KafkaRead for [(String, Vec<u8>)] {
    fn get_kafka(&self, key: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }
}

/// A read-only view of Kafka-style headers, for the consumer side.
impl Extractor for Vec<(String, Vec<u8>)> {
    fn get(&self, key: &str) -> Option<&str> {
        self.as_slice().get_kafka(key)
    }

    fn keys(&self) -> Vec<&str> {
        self.iter().map(|(k, _)| k.as_str()).collect()
    }
}

/// AMQP 0-9-1 message headers (lapin's `FieldTable`, the `headers` of
/// `BasicProperties`). Values are written as long strings; short and long strings are
/// read.
#[cfg(feature = "lapin")]
mod amqp {
    use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};

    use super::{Extractor, Injector};

    impl Injector for FieldTable {
        fn set(&mut self, key: &str, value: &str) {
            if let Ok(key) = ShortString::try_new(key) {
                self.insert(key, AMQPValue::LongString(LongString::from(value)));
            }
        }
    }

    impl Extractor for FieldTable {
        fn get(&self, key: &str) -> Option<&str> {
            let value = self.inner().get(key).or_else(|| {
                self.inner()
                    .iter()
                    .find(|(k, _)| k.as_str().eq_ignore_ascii_case(key))
                    .map(|(_, v)| v)
            })?;
            match value {
                AMQPValue::LongString(s) => std::str::from_utf8(s.as_bytes()).ok(),
                AMQPValue::ShortString(s) => Some(s.as_str()),
                _ => None,
            }
        }

        fn keys(&self) -> Vec<&str> {
            self.inner().keys().map(ShortString::as_str).collect()
        }
    }
}

/// NATS message headers (`async_nats::HeaderMap`).
#[cfg(feature = "nats")]
mod nats {
    use super::{Extractor, Injector};

    impl Injector for async_nats::HeaderMap {
        fn set(&mut self, key: &str, value: &str) {
            self.insert(key, value);
        }
    }

    impl Extractor for async_nats::HeaderMap {
        fn get(&self, key: &str) -> Option<&str> {
            async_nats::HeaderMap::get(self, key).map(async_nats::HeaderValue::as_str)
        }

        fn keys(&self) -> Vec<&str> {
            self.iter().map(|(k, _)| k.as_ref()).collect()
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::propagation::{B3Encoding, B3Propagator, Propagator, TextMapPropagator};
    use crate::{SpanContext, SpanId, TraceFlags, TraceId};

    fn cx() -> SpanContext {
        SpanContext::new(TraceId::random(), SpanId::random(), TraceFlags::SAMPLED)
    }

    #[test]
    fn http_headers_round_trip_case_insensitively() {
        let original = cx();
        let mut headers = http::HeaderMap::new();
        Propagator::w3c_and_b3().inject(&original, &mut headers);
        assert!(headers.contains_key("Traceparent") && headers.contains_key("B3"));
        let back = Propagator::default().extract(&headers).unwrap();
        assert_eq!(back.span_id, original.span_id);
        let only_b3 = B3Propagator::new(B3Encoding::MultipleHeader);
        let mut headers = http::HeaderMap::new();
        only_b3.inject(&original, &mut headers);
        assert!(headers.contains_key("X-B3-TraceId"));
        assert_eq!(
            Propagator::w3c_and_b3().extract(&headers).unwrap().trace_id,
            original.trace_id
        );
    }

    #[test]
    fn kafka_headers_round_trip() {
        let original = cx();
        let mut list = vec![("other".to_owned(), b"x".to_vec())];
        Propagator::default().inject(&original, &mut KafkaHeaders(&mut list));
        Propagator::default().inject(&original, &mut KafkaHeaders(&mut list));
        assert_eq!(list.len(), 2, "injection replaces");
        assert_eq!(Propagator::default().extract(&list).unwrap().span_id, original.span_id);
    }

    #[cfg(feature = "lapin")]
    #[test]
    fn amqp_headers_round_trip() {
        let original = cx();
        let mut table = lapin::types::FieldTable::default();
        Propagator::w3c_and_b3().inject(&original, &mut table);
        assert!(table.contains_key("traceparent"));
        assert_eq!(Propagator::default().extract(&table).unwrap().span_id, original.span_id);
    }

    #[cfg(feature = "nats")]
    #[test]
    fn nats_headers_round_trip() {
        let original = cx();
        let mut headers = async_nats::HeaderMap::new();
        Propagator::default().inject(&original, &mut headers);
        assert_eq!(
            Propagator::default().extract(&headers).unwrap().span_id,
            original.span_id
        );
    }
}
