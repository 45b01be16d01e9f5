{{ submission_history('adjustments') }}
