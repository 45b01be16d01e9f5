{{ submission_history('key_projects') }}
