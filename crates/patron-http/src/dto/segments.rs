//! The shapes of the segments endpoints: segments and their members.

use jiff::Timestamp;
use serde::Serialize;
use utoipa::ToSchema;

/// A segment and its members.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SegmentOut {
    pub id: String,
    /// `rfv` (a cell group of the RFV grid, members of the latest run) or `rule` (a
    /// `[[segments]]` condition, members as of the last evaluation).
    pub kind: String,
    pub name: String,
    pub members: i64,
}

/// Every segment of the program.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SegmentPage {
    pub data: Vec<SegmentOut>,
    /// Always null: the list is one page.
    pub next_cursor: Option<String>,
}

/// A member of a segment.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SegmentMemberOut {
    pub member_id: String,
    /// Rule segments: when the member entered.
    pub entered_at: Option<Timestamp>,
    /// RFV segments: the member's scores and values in the run.
    pub r: Option<i64>,
    pub f: Option<i64>,
    pub m: Option<i64>,
    pub recency_days: Option<i64>,
    pub frequency: Option<i64>,
    pub monetary_minor: Option<i64>,
}

impl From<patron_engine::model::SegmentMember> for SegmentMemberOut {
    fn from(member: patron_engine::model::SegmentMember) -> Self {
        let scores = member.scores.as_ref();
        SegmentMemberOut {
            member_id: member.member_id.clone(),
            entered_at: member.entered_at,
            r: scores.map(|s| s.r),
            f: scores.map(|s| s.f),
            m: scores.map(|s| s.m),
            recency_days: scores.map(|s| s.recency_days),
            frequency: scores.map(|s| s.frequency),
            monetary_minor: scores.map(|s| s.monetary_minor),
        }
    }
}

/// A page of a segment's members, in id order.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SegmentMemberPage {
    pub data: Vec<SegmentMemberOut>,
    /// Pass as `?cursor=` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}
