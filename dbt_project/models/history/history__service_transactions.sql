{{ submission_history('service_transactions') }}
