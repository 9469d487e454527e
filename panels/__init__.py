"""Sidebar panels: they only draw."""
