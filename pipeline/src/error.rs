//! The pipeline's error type: what failed, where, and the cause, as values a caller can match on
//! (a create-only PUT that found its key taken is [`Error::S3Status`] with status 412, not a
//! string to search).
//!
//! Whether an error restarts a session or stops the process is not the error's business: the
//! processing loops wrap it in [`LoopError`](crate::session::LoopError) where they decide.

use std::path::PathBuf;

use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

/// Result type of the pipeline crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A client configuration file the harness rendered: unreadable, or a setting missing or wrong.
    #[error("{}: {message}", .path.display())]
    Config { path: PathBuf, message: String },

    /// A call into the Kafka client, and what it was for.
    #[error("{what}: {source}")]
    Kafka {
        what: String,
        #[source]
        source: KafkaError,
    },

    /// The Kafka client entered a fatal state (a fenced producer, say): the call that hit it and
    /// the cause the client keeps.
    #[error("{what}; cause: {code:?}: {reason}")]
    KafkaFatal { what: String, code: RDKafkaErrorCode, reason: String },

    /// A topic the pipeline reads is missing or has no partitions yet.
    #[error("topic {topic}: {message}")]
    Topic { topic: String, message: String },

    /// A record of the join's checkpoint topic that is not a checkpoint: the join cannot
    /// tell where to resume, and stops rather than guess.
    #[error("{topic} at offset {offset}: not a checkpoint: {message}")]
    Checkpoint { topic: String, offset: i64, message: String },

    /// Some outputs of an at-least-once batch were not delivered, so no checkpoint was
    /// written.
    #[error("{failed} outputs were not delivered; checkpoint not written")]
    Undelivered { failed: u64 },

    /// A statement against the warehouse database, and what it was for.
    #[error("{what}: {source}")]
    Warehouse {
        what: String,
        #[source]
        source: postgres::Error,
    },

    /// An S3 request that got no answer, or an answer that could not be read.
    #[error("{what}: {message}")]
    S3 { what: String, message: String },

    /// An S3 request answered with a status other than the ones expected.
    #[error("{what}: HTTP {status}: {body}")]
    S3Status { what: String, status: u16, body: String },

    /// The S3 endpoint cannot give the lake sink what it needs (conditional writes).
    #[error("the S3 endpoint {endpoint} {message}")]
    S3Unsuitable { endpoint: String, message: String },

    /// A Parquet object of the lake that cannot be written or read, and which one.
    #[error("{what}: {source}")]
    Parquet {
        what: String,
        #[source]
        source: parquet::errors::ParquetError,
    },

    /// A record that is not what its topic carries.
    #[error("not a customer_360 change record: {source}")]
    ChangeRecord {
        #[source]
        source: serde_json::Error,
    },

    /// The metrics endpoint could not listen.
    #[error("metrics on {address}: {source}")]
    Metrics {
        address: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub fn kafka(what: impl Into<String>, source: KafkaError) -> Error {
        Error::Kafka { what: what.into(), source }
    }

    pub fn warehouse(what: impl Into<String>) -> impl FnOnce(postgres::Error) -> Error {
        let what = what.into();
        move |source| Error::Warehouse { what, source }
    }

    pub fn parquet(what: impl Into<String>) -> impl FnOnce(parquet::errors::ParquetError) -> Error {
        let what = what.into();
        move |source| Error::Parquet { what, source }
    }

    /// Whether an S3 request was answered with `status`.
    pub fn is_s3_status(&self, status: u16) -> bool {
        matches!(self, Error::S3Status { status: s, .. } if *s == status)
    }

    /// Whether the Kafka client can no longer be used: a fatal transactional error, or a producer
    /// fenced by a newer instance (once fenced, librdkafka fails every later call with `_FATAL`,
    /// and restarting the session would fence the newer instance in turn).
    pub fn is_fatal_client_error(&self) -> bool {
        match self {
            Error::KafkaFatal { .. } => true,
            Error::Kafka { source: KafkaError::Transaction(r), .. } => r.is_fatal(),
            Error::Kafka { source, .. } => matches!(
                source.rdkafka_error_code(),
                Some(RDKafkaErrorCode::Fenced)
                    | Some(RDKafkaErrorCode::ProducerFenced)
                    | Some(RDKafkaErrorCode::Fatal)
                    | Some(RDKafkaErrorCode::InvalidProducerEpoch)
            ),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_what_and_why() {
        let e = Error::Config { path: "/x/processing.properties".into(), message: "no bootstrap.servers".into() };
        assert_eq!(e.to_string(), "/x/processing.properties: no bootstrap.servers");
        let e = Error::S3Status { what: "PUT p/k".into(), status: 412, body: "PreconditionFailed".into() };
        assert_eq!(e.to_string(), "PUT p/k: HTTP 412: PreconditionFailed");
        assert!(e.is_s3_status(412) && !e.is_s3_status(409));
        assert_eq!(Error::Undelivered { failed: 3 }.to_string(), "3 outputs were not delivered; checkpoint not written");
    }

    #[test]
    fn fenced_and_fatal_clients_are_told_apart_from_passing_trouble() {
        let fatal = Error::kafka("begin_transaction", KafkaError::MessageProduction(RDKafkaErrorCode::Fatal));
        assert!(fatal.is_fatal_client_error());
        let fenced = Error::kafka("producing", KafkaError::MessageProduction(RDKafkaErrorCode::ProducerFenced));
        assert!(fenced.is_fatal_client_error());
        let passing = Error::kafka("metadata of t", KafkaError::MetadataFetch(RDKafkaErrorCode::BrokerTransportFailure));
        assert!(!passing.is_fatal_client_error());
        assert!(!Error::Topic { topic: "t".into(), message: "missing".into() }.is_fatal_client_error());
    }
}
