"""Salesforce REST stand-in: OAuth, SOQL query with pagination, sObjects, Collections."""
