{{ submission_history('budget_execution') }}
