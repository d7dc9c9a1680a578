//! AWS errors as the crate's errors: what a failed call means to the pipeline, decided here in
//! the adapter from the SDK's account of it (how the call failed, the service's error code,
//! the HTTP status), never by the core.
//!
//! | class | when | crate error | `error_type` |
//! | --- | --- | --- | --- |
//! | transient | throttling, a 5xx, a timeout, a failed connection, a cut-off response | [`Error::Remote`] | `Retryable` |
//! | access denied | the role lacks a permission, or the credentials are refused (403) | [`Error::AccessDenied`] | `AccessDenied` |
//! | missing resource | the bucket, table, function or state machine named does not exist | [`Error::Refused`] [`Refusal::MissingResource`] | `InvalidConfig` |
//! | invalid | validation: a malformed request, a value beyond the service's limits (other 4xx) | [`Error::Refused`] [`Refusal::Invalid`] | `InvalidInput` |
//! | conflict | a condition of the write did not hold (someone wrote first; 409, 412) | [`Error::Refused`] [`Refusal::Conflict`] | `Conflict` |
//!
//! The SDK has retried the transient ones already (standard mode); only `Retryable` is retried
//! again by the state machine. An absent S3 object (`NoSuchKey`) is told apart by the S3
//! adapter itself ([`Error::NotFound`]).

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

use crate::error::{Error, Refusal};

/// What a failed AWS call means (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// May pass on a retry: throttling, a 5xx, a timeout, a failed connection.
    Transient,
    /// The role lacks a permission or the credentials are refused.
    AccessDenied,
    /// No retry can change it: a missing resource, an invalid request, a lost condition.
    Refused(Refusal),
}

/// How the call failed, as the SDK tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The request could not be built (a missing or malformed parameter).
    Construction,
    /// No answer in time.
    Timeout,
    /// The request could not be sent (connection refused or reset, DNS, credentials).
    Dispatch,
    /// The answer could not be read.
    Response,
    /// The service answered with an error.
    Service,
}

/// Error codes of the services the adapters call, by class (the rest go by HTTP status).
const TRANSIENT: &[&str] = &[
    "BandwidthLimitExceeded",
    "ConcurrentModificationException",
    "EC2ThrottledException",
    "EC2UnexpectedException",
    "IDPCommunicationError",
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "InternalServiceError",
    "InternalServiceException",
    "LimitExceededException",
    "OperationTimeoutException",
    "PriorRequestNotComplete",
    "ProvisionedThroughputExceededException",
    "ReplicatedWriteConflictException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "RequestTimeout",
    "RequestTimeoutException",
    "ResourceConflictException",
    "ResourceNotReadyException",
    "ServiceException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "TransactionConflictException",
    "TransactionInProgressException",
];
const ACCESS_DENIED: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "AllAccessDisabled",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidAccessKeyId",
    "InvalidClientTokenId",
    "InvalidSignatureException",
    "KMSAccessDeniedException",
    "MissingAuthenticationToken",
    "MissingAuthenticationTokenException",
    "SignatureDoesNotMatch",
    "UnauthorizedOperation",
    "UnrecognizedClientException",
];
const MISSING_RESOURCE: &[&str] = &[
    "EntityNotFoundException",
    "ExecutionDoesNotExist",
    "NoSuchBucket",
    "ResourceNotFound",
    "ResourceNotFoundException",
    "StateMachineDoesNotExist",
    "TableNotFoundException",
];
const CONFLICT: &[&str] = &[
    "AlreadyExistsException",
    "BucketAlreadyExists",
    "BucketAlreadyOwnedByYou",
    "ConditionalCheckFailedException",
    "ExecutionAlreadyExists",
    "PreconditionFailed",
    "ResourceInUseException",
];
const INVALID: &[&str] = &[
    "EntityTooLarge",
    "EntityTooSmall",
    "ExecutionNotRedrivable",
    "InvalidArgument",
    "InvalidArn",
    "InvalidExecutionInput",
    "InvalidInputException",
    "InvalidName",
    "InvalidParameterCombination",
    "InvalidParameterException",
    "InvalidParameterValueException",
    "InvalidPart",
    "InvalidRequest",
    "InvalidRequestContentException",
    "InvalidRequestException",
    "ItemCollectionSizeLimitExceededException",
    "MalformedXML",
    "RequestEntityTooLargeException",
    "ResourceNumberLimitExceededException",
    "SerializationException",
    "ValidationError",
    "ValidationException",
];

/// The class of a failed call: by how it failed, then the service's error code, then the HTTP
/// status. A DynamoDB transaction cancelled by a failed condition is a conflict; cancelled by
/// throttling or another transaction, transient (its reasons are in the message).
pub fn classify(
    failure: Failure,
    code: Option<&str>,
    message: Option<&str>,
    status: Option<u16>,
) -> ErrorClass {
    match failure {
        Failure::Construction => return ErrorClass::Refused(Refusal::Invalid),
        Failure::Timeout | Failure::Dispatch | Failure::Response => return ErrorClass::Transient,
        Failure::Service => {}
    }
    if let Some(code) = code {
        if code == "TransactionCanceledException" {
            let reasons = message.unwrap_or_default();
            return if reasons.contains("ConditionalCheckFailed") {
                ErrorClass::Refused(Refusal::Conflict)
            } else if reasons.contains("ThrottlingError") || reasons.contains("TransactionConflict")
            {
                ErrorClass::Transient
            } else {
                ErrorClass::Refused(Refusal::Invalid)
            };
        }
        for (codes, class) in [
            (TRANSIENT, ErrorClass::Transient),
            (ACCESS_DENIED, ErrorClass::AccessDenied),
            (
                MISSING_RESOURCE,
                ErrorClass::Refused(Refusal::MissingResource),
            ),
            (CONFLICT, ErrorClass::Refused(Refusal::Conflict)),
            (INVALID, ErrorClass::Refused(Refusal::Invalid)),
        ] {
            if codes.contains(&code) {
                return class;
            }
        }
    }
    match status {
        Some(403) => ErrorClass::AccessDenied,
        Some(404) => ErrorClass::Refused(Refusal::MissingResource),
        Some(409 | 412) => ErrorClass::Refused(Refusal::Conflict),
        Some(429) => ErrorClass::Transient,
        Some(400..=499) => ErrorClass::Refused(Refusal::Invalid),
        // A 5xx, or no status at all.
        _ => ErrorClass::Transient,
    }
}

/// A failed SDK call as the crate's error: which service and operation, the service's error
/// code and message (the SDK's messages name resources, never item contents), classified by
/// [`classify`].
pub(crate) fn sdk_error<E>(service: &'static str, operation: &'static str, e: SdkError<E>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let failure = match &e {
        SdkError::ConstructionFailure(_) => Failure::Construction,
        SdkError::TimeoutError(_) => Failure::Timeout,
        SdkError::DispatchFailure(_) => Failure::Dispatch,
        SdkError::ResponseError(_) => Failure::Response,
        _ => Failure::Service,
    };
    let code = e
        .as_service_error()
        .and_then(|s| s.code())
        .map(str::to_string);
    let service_message = e
        .as_service_error()
        .and_then(|s| s.message())
        .map(str::to_string);
    let status = e.raw_response().map(|r| r.status().as_u16());
    let class = classify(failure, code.as_deref(), service_message.as_deref(), status);
    let message = error_chain(&e);
    match class {
        ErrorClass::Transient => Error::Remote {
            service,
            operation,
            message,
        },
        ErrorClass::AccessDenied => Error::AccessDenied {
            service,
            operation,
            resource: String::new(),
            message,
        },
        ErrorClass::Refused(refusal) => Error::Refused {
            refusal,
            service,
            operation,
            code: code.unwrap_or_else(|| "-".into()),
            message,
        },
    }
}

/// A failure past the call itself (a response body cut off while read): transient.
pub(crate) fn transient_error(
    service: &'static str,
    operation: &'static str,
    e: &(dyn std::error::Error + 'static),
) -> Error {
    Error::Remote {
        service,
        operation,
        message: error_chain(e),
    }
}

/// `e` and its sources on one line.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::error::ConnectorError;
    use aws_sdk_dynamodb::operation::put_item::PutItemError;

    const MISSING: ErrorClass = ErrorClass::Refused(Refusal::MissingResource);
    const INVALID: ErrorClass = ErrorClass::Refused(Refusal::Invalid);
    const CONFLICT: ErrorClass = ErrorClass::Refused(Refusal::Conflict);

    fn service(code: &str, status: u16) -> ErrorClass {
        classify(Failure::Service, Some(code), None, Some(status))
    }

    #[test]
    fn throttling_5xx_timeouts_and_dispatch_failures_are_transient() {
        for (code, status) in [
            ("ThrottlingException", 400),
            ("ProvisionedThroughputExceededException", 400),
            ("SlowDown", 503),
            ("InternalServerError", 500),
            ("TooManyRequestsException", 429),
            ("TransactionConflictException", 400),
            ("SomethingNew", 502),
            ("SomethingNew", 429),
        ] {
            assert_eq!(service(code, status), ErrorClass::Transient, "{code}");
        }
        assert_eq!(
            classify(Failure::Service, None, None, None),
            ErrorClass::Transient
        );
        for f in [Failure::Timeout, Failure::Dispatch, Failure::Response] {
            assert_eq!(classify(f, None, None, None), ErrorClass::Transient);
        }
    }

    #[test]
    fn permissions_missing_resources_and_invalid_requests_are_not_retried() {
        for (code, status, class) in [
            ("AccessDenied", 403, ErrorClass::AccessDenied),
            ("AccessDeniedException", 400, ErrorClass::AccessDenied),
            ("UnrecognizedClientException", 400, ErrorClass::AccessDenied),
            ("SomethingNew", 403, ErrorClass::AccessDenied),
            ("NoSuchBucket", 404, MISSING),
            ("ResourceNotFoundException", 400, MISSING),
            ("StateMachineDoesNotExist", 400, MISSING),
            ("SomethingNew", 404, MISSING),
            ("ValidationException", 400, INVALID),
            ("InvalidParameterValueException", 400, INVALID),
            ("SomethingNew", 400, INVALID),
            ("ConditionalCheckFailedException", 400, CONFLICT),
            ("PreconditionFailed", 412, CONFLICT),
            ("SomethingNew", 409, CONFLICT),
        ] {
            assert_eq!(service(code, status), class, "{code} {status}");
        }
        assert_eq!(classify(Failure::Construction, None, None, None), INVALID);
    }

    #[test]
    fn a_cancelled_transaction_is_classified_by_its_reasons() {
        let cancelled = |reasons: &str| {
            classify(
                Failure::Service,
                Some("TransactionCanceledException"),
                Some(&format!(
                    "Transaction cancelled, please refer cancellation reasons for specific reasons [{reasons}]"
                )),
                Some(400),
            )
        };
        assert_eq!(cancelled("None, ConditionalCheckFailed"), CONFLICT);
        assert_eq!(cancelled("ThrottlingError, None"), ErrorClass::Transient);
        assert_eq!(cancelled("TransactionConflict"), ErrorClass::Transient);
        assert_eq!(cancelled("ValidationError"), INVALID);
    }

    #[test]
    fn sdk_errors_become_the_crate_errors_with_their_error_types() {
        let timeout: SdkError<PutItemError> = SdkError::timeout_error("operation timed out");
        let e = sdk_error("dynamodb", "PutItem", timeout);
        assert!(matches!(e, Error::Remote { .. }), "{e:?}");
        assert_eq!(e.error_type(), "Retryable");

        let refused: SdkError<PutItemError> = SdkError::dispatch_failure(ConnectorError::io(
            std::io::Error::from(std::io::ErrorKind::ConnectionRefused).into(),
        ));
        let e = sdk_error("dynamodb", "PutItem", refused);
        assert_eq!(e.error_type(), "Retryable");
        assert!(e.to_string().starts_with("dynamodb PutItem: "), "{e}");

        let unbuildable: SdkError<PutItemError> =
            SdkError::construction_failure("table_name was not specified");
        let e = sdk_error("dynamodb", "PutItem", unbuildable);
        assert!(
            matches!(
                e,
                Error::Refused {
                    refusal: Refusal::Invalid,
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(e.error_type(), "InvalidInput");
    }

    #[test]
    fn the_error_types_of_the_refusals_are_stable() {
        for (refusal, error_type) in [
            (Refusal::MissingResource, "InvalidConfig"),
            (Refusal::Invalid, "InvalidInput"),
            (Refusal::Conflict, "Conflict"),
        ] {
            let e = Error::Refused {
                refusal,
                service: "dynamodb",
                operation: "PutItem",
                code: "X".into(),
                message: "m".into(),
            };
            assert_eq!(e.error_type(), error_type);
            assert!(
                e.to_string()
                    .starts_with("dynamodb PutItem refused the call (X): m; ")
            );
        }
    }
}
