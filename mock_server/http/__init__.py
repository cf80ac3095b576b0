"""The HTTP layer of the API: one WSGI pipeline (pipeline.py) of small steps, the router, CORS, the one error
renderer, and the Host guard in front of everything. Flask serves only the operator endpoints."""
