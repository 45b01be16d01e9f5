{{ submission_history('hotline_complaints') }}
