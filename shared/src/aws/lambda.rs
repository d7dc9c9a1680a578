//! Hands each accepted delivery to the normalizer function: an asynchronous invocation
//! (`InvocationType=Event`) per request. Lambda queues the event and retries it; what still
//! fails lands in the normalizer's on-failure destination (template.yaml).

use aws_sdk_lambda::Client;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use serde::Serialize;

use super::sdk_error;
use crate::error::{Error, Result};

/// The normalizer function, invoked asynchronously.
#[derive(Debug, Clone)]
pub struct NormalizerInvoker {
    client: Client,
    function: String,
}

impl NormalizerInvoker {
    /// An invoker of the Lambda function `function` (name or ARN).
    pub fn new(sdk: &aws_config::SdkConfig, function: impl Into<String>) -> Self {
        Self {
            client: Client::new(sdk),
            function: function.into(),
        }
    }

    /// Queues one invocation per request, in order; returns how many were queued. Lambda
    /// answers 202 when it has queued the event.
    pub async fn dispatch<T: Serialize>(&self, requests: &[T]) -> Result<u64> {
        let mut queued = 0;
        for r in requests {
            let out = self
                .client
                .invoke()
                .function_name(&self.function)
                .invocation_type(InvocationType::Event)
                .payload(Blob::new(serde_json::to_vec(r)?))
                .send()
                .await
                .map_err(|e| sdk_error("lambda", "Invoke", e))?;
            if out.status_code() != 202 {
                return Err(Error::Remote {
                    service: "lambda",
                    operation: "Invoke",
                    message: format!(
                        "{} answered {} instead of 202 (queued)",
                        self.function,
                        out.status_code()
                    ),
                });
            }
            queued += 1;
        }
        Ok(queued)
    }
}
