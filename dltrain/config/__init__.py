"""Config support: resolvers, validation rules and the check Hydra runs before each job."""
