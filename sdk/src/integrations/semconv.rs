//! OpenTelemetry semantic-convention attribute names used by the integrations.

/// `db.system.name` (e.g. `postgresql`, `mariadb`, `mysql`, `redis`).
pub const DB_SYSTEM_NAME: &str = "db.system.name";
/// `db.namespace` (database name; Redis database index).
pub const DB_NAMESPACE: &str = "db.namespace";
/// `db.operation.name` (e.g. `SELECT`, `GET`).
pub const DB_OPERATION_NAME: &str = "db.operation.name";
/// `db.collection.name` (table).
pub const DB_COLLECTION_NAME: &str = "db.collection.name";
/// `db.query.text` (parameterised query text).
pub const DB_QUERY_TEXT: &str = "db.query.text";
/// `server.address`.
pub const SERVER_ADDRESS: &str = "server.address";
/// `server.port`.
pub const SERVER_PORT: &str = "server.port";
/// `messaging.system` (e.g. `rabbitmq`, `kafka`, `nats`).
pub const MESSAGING_SYSTEM: &str = "messaging.system";
/// `messaging.destination.name` (exchange / queue / topic).
pub const MESSAGING_DESTINATION_NAME: &str = "messaging.destination.name";
/// `messaging.operation.type` (`send`, `receive`, `process`, ...).
pub const MESSAGING_OPERATION_TYPE: &str = "messaging.operation.type";
/// `messaging.operation.name` (system-specific, e.g. `publish`, `ack`).
pub const MESSAGING_OPERATION_NAME: &str = "messaging.operation.name";
/// `messaging.rabbitmq.destination.routing_key`.
pub const MESSAGING_RABBITMQ_ROUTING_KEY: &str = "messaging.rabbitmq.destination.routing_key";
/// `messaging.message.body.size`.
pub const MESSAGING_MESSAGE_BODY_SIZE: &str = "messaging.message.body.size";
/// `http.request.method`.
pub const HTTP_REQUEST_METHOD: &str = "http.request.method";
/// `http.route`.
pub const HTTP_ROUTE: &str = "http.route";
/// `http.response.status_code`.
pub const HTTP_RESPONSE_STATUS_CODE: &str = "http.response.status_code";
/// `url.full`.
pub const URL_FULL: &str = "url.full";
/// `url.path`.
pub const URL_PATH: &str = "url.path";
/// `url.scheme`.
pub const URL_SCHEME: &str = "url.scheme";
/// `error.type`.
pub const ERROR_TYPE: &str = "error.type";
