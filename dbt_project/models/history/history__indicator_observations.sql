{{ submission_history('indicator_observations', slice_column='indicator_id') }}
