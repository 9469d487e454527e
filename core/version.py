"""The LatticeTalk version: recorded in every take's provenance and checked between a farm's client and workers. The
package root re-exports it; core reads it from here so it never imports the add-on package above it."""

__version__ = "0.1.0"
