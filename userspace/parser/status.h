#pragma once
// Shared result state of the preread parsers: they are re-called with every byte received so
// far, so "not enough yet" is a normal answer, distinct from a verdict.
namespace snigate::parser {

enum class Status { NeedMore, Done, Error };

}  // namespace snigate::parser
