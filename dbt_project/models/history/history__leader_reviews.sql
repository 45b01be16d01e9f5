{{ submission_history('leader_reviews') }}
