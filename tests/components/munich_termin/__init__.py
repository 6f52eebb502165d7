"""Tests of the Munich Termin integration."""
