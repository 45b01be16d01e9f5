{{ submission_history('indicator_observations') }}
