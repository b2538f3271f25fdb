// Console behaviour shared by every page: live connection and keyboard shortcuts (filled in by the console work).
