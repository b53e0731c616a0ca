#!/usr/bin/env bash
# relabel.sh: makes the invariant labels unique across the project (issue 13). The plan and the
# reasons are in RELABEL.md; this is what applies it.
#
#   ./relabel.sh            rename, then check (run from anywhere inside the checkout)
#   ./relabel.sh --dry-run  say what would be renamed, change nothing, then check
#   ./relabel.sh --check    only check: labels defined in more than one file, and leftovers to review
#
# Renames (only these; every other label is unique already and stays):
#   atom.cc's invariants          A1-A5 -> V1-V5   (the allocator's A1-A7 stay)
#   atom_table.{h,cc}'s           A1-A4 -> T1-T4
#   change_notification.{h,cc}'s  W1-W4 -> K1-K4   (the chain walk's W1-W4 stay)
#   chain_walk.h's ordering edge  (S1)  -> (1)     (the slot table's S1-S3 stay)
# and every reference to them: in those files, in files that name them ("A5 in atom/atom.cc",
# "change_notification.h W3"), in intent_recovery.{h,cc} (whose A-labels all cite atom.cc), and in
# the sections of docs/design.md and docs/reliability.md that describe those files.
#
# Files are found by base name among the files git knows of (tracked, or untracked and not
# ignored), so the script works before or after the re-layering moves files (src/domain/* ->
# src/file/, src/intent/, src/api/). In C++ files only comments (the text after //) are changed.
# Idempotent: a new label never matches an old pattern, so a second run changes nothing.
# Requires bash, git and perl (perl-base is part of every Debian system).
set -euo pipefail

mode=apply
case "${1:-}" in
  "") ;;
  --dry-run) mode=dry-run ;;
  --check) mode=check ;;
  *) echo "usage: $0 [--dry-run|--check]" >&2; exit 2 ;;
esac

cd "$(git rev-parse --show-toplevel)"
mapfile -t files < <(git ls-files --cached --others --exclude-standard -- \
                       '*.h' '*.cc' '*.cpp' '*.md' |
                     grep -v -E '(^|/)RELABEL\.md$' | sort -u |
                     while IFS= read -r f; do [[ -f "$f" ]] && printf '%s\n' "$f"; done)

# Each rule, fields separated by " ;; " (perl regexes; an empty field is no condition):
#   base name ;; line filter (only lines matching it) ;; line exclusion (lines matching it are left
#   alone) ;; section (a Markdown heading: only the lines under it, up to the next heading of the
#   same or a higher level) ;; substitution (a perl s///, applied to the comment part of a C++
#   line, to the whole of a Markdown line).
# The exclusions keep lines that name another scheme's file ("allocator.cc A4") as they are.
read -r -d '' RULES <<'EOF' || true
^atom\.cc$ ;; ;; allocator\.(?:cc|h)|atom_table|chain_walk ;; ;; s/\bA([1-5])\b/V$1/g
^intent_recovery\.(?:h|cc)$ ;; ;; allocator\.(?:cc|h)|atom_table|chain_walk ;; ;; s/\bA([1-5])\b/V$1/g
^atom_table\.(?:h|cc)$ ;; ;; allocator\.(?:cc|h)|\batom\.cc ;; ;; s/\bA([1-4])\b/T$1/g
^change_notification\.(?:h|cc)$ ;; ;; chain_walk|ChainWalk|block_bounds ;; ;; s/\bW([1-4])\b/K$1/g
^chain_walk\.h$ ;; \(S1\) acquire fence ;; ;; ;; s/\(S1\)/(1)/
. ;; ;; ;; ;; s/\bA([1-5])(?= in (?:src\/)?atom\/atom\.cc)/V$1/g
. ;; ;; ;; ;; s/(\batom\.cc`?,? \(?)A([1-5])\b/$1V$2/g
. ;; ;; ;; ;; s/(\batom_table(?:\.h|\.cc|\.\{h,cc\})?`?,? \(?)A([1-4])\b/$1T$2/g
. ;; ;; ;; ;; s/(\bchange_notification(?:\.h|\.cc|\.\{h,cc\})?`?,? \(?)W([1-4])\b/$1K$2/g
^design\.md$ ;; ;; ;; ^## Atom table ;; s/\bA([1-4])\b/T$1/g
^design\.md$ ;; ;; ;; ^## Atoms\b ;; s/\bA([1-5])\b/V$1/g
^design\.md$ ;; ;; ;; ^## Atoms\b ;; s/\bW([1-4])\b/K$1/g
^design\.md$ ;; A failed CAS\*\* frees the attempt ;; ;; ;; s/\(A3\)/(V3)/
^reliability\.md$ ;; ;; ;; ^## A change is never missed by a waiter ;; s/\bW([1-4])\b/K$1/g
EOF

# Applies RULES to the files named on stdin; prints one line per changed line (old, then new).
apply_rules() {
  RULES="$RULES" DRY="$1" perl -e '
    use strict; use warnings;
    my @rules;
    for (split /\n/, $ENV{RULES}) {
      next unless length;
      my ($base, $only, $skip, $section, $subst) = split /\s*;;\s*/, $_, -1;
      die "bad rule: $_\n" unless defined $subst && length $subst;
      push @rules, { base => qr/$base/, only => $only, skip => $skip, section => $section,
                     subst => eval "sub { $subst }" || die "bad rule $subst: $@" };
    }
    my $changed_total = 0;
    while (my $path = <STDIN>) {
      chomp $path;
      (my $base = $path) =~ s{.*/}{};
      my @mine = grep { $base =~ $_->{base} } @rules;
      next unless @mine;
      my $markdown = $path =~ /\.md$/;
      open(my $in, "<", $path) or die "$path: $!";
      my @lines = <$in>;
      close $in;
      my $changed = 0;
      for my $rule (@mine) {
        my $inside = $rule->{section} eq "";
        my $level = 0;
        for my $i (0 .. $#lines) {
          my $line = $lines[$i];
          if ($rule->{section} ne "" && $line =~ /^(#+) /) {
            my $l = length $1;
            if ($line =~ /$rule->{section}/) { $inside = 1; $level = $l; next; }
            $inside = 0 if $inside && $l <= $level;
          }
          next unless $inside;
          next if $rule->{only} ne "" && $line !~ /$rule->{only}/;
          next if $rule->{skip} ne "" && $line =~ /$rule->{skip}/;
          my $new = $line;
          if ($markdown) {
            local $_ = $new; $rule->{subst}->(); $new = $_;
          } elsif ($new =~ m{^(.*?)(//.*)$}s) {
            my ($code, $comment) = ($1, $2);
            local $_ = $comment; $rule->{subst}->(); $new = $code . $_;
          }
          next if $new eq $line;
          print "$path:", $i + 1, ":\n  - $line  + $new";
          $lines[$i] = $new;
          ++$changed;
        }
      }
      next unless $changed;
      $changed_total += $changed;
      next if $ENV{DRY};
      open(my $out, ">", $path) or die "$path: $!";
      print $out @lines;
      close $out;
    }
    print "$changed_total line(s) ", ($ENV{DRY} ? "would change" : "changed"), "\n";
  '
}

# Labels defined in more than one file (a line "//  (X1) ..." at column 0: the invariants block
# at a file's head; an indented "(X1)" comment is a use, as in block_bounds.h's "(W1)"), and
# lines a human should look at: an A-label outside the allocator's files that does not name
# allocator.cc, or a W-label next to words of the waiting protocol (change notification's text
# that moved to a file the rules do not know).
check() {
  printf '%s\n' "${files[@]}" | perl -e '
    use strict; use warnings;
    my (%defined, @review);
    while (my $path = <STDIN>) {
      chomp $path;
      (my $base = $path) =~ s{.*/}{};
      my $markdown = $path =~ /\.md$/;
      open(my $in, "<", $path) or die "$path: $!";
      while (my $line = <$in>) {
        if (!$markdown && $line =~ m{^//\s+\(([A-Z][0-9]+)\)\s}) { $defined{$1}{$path} = 1; }
        my $text = $markdown ? $line : ($line =~ m{(//.*)$} ? $1 : "");
        if ($text =~ /\bA[1-7]\b/ && $base !~ /^allocator/ && $text !~ /allocator/) {
          push @review, "$path:$.: $line";
        }
        if ($text =~ /\bW[1-4]\b/ && $text =~ /waiter|waiting_for|notif|wake|futex/i) {
          push @review, "$path:$.: $line";
        }
      }
      close $in;
    }
    my $dups = 0;
    for my $label (sort keys %defined) {
      my @where = sort keys %{$defined{$label}};
      next if @where < 2;
      print "defined in more than one file: $label: @where\n";
      ++$dups;
    }
    print "to review (an A- or W-label that may belong to a renamed scheme):\n", map { "  $_" } @review
      if @review;
    print $dups ? "check: $dups label(s) defined in more than one file\n"
                : "check: every invariant label is defined in one file\n";
    exit($dups ? 1 : 0);
  '
}

case "$mode" in
  apply) printf '%s\n' "${files[@]}" | apply_rules "" ;;
  dry-run) printf '%s\n' "${files[@]}" | apply_rules 1 ;;
esac
check
