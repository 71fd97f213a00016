"""Jobs: the model, the queue API's service, and the SQS messages that carry them."""
