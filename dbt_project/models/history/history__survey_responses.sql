{{ submission_history('survey_responses') }}
