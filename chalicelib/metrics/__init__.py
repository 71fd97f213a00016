"""Job metrics: the histogram maths and the service that records and reads them."""
